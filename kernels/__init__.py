"""CUDA C++ sources of the search operators (data package: the .cu files ship in the wheel)."""
