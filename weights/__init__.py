"""Pretrained weights shipped with snl (data package: .safetensors + .json manifests)."""
