#!/usr/bin/env bash
# extract_sidd_pairs.sh SMALL_GITDIR SAMPLES_GITDIR [DEST]
#
# Real smartphone noisy/clean pairs from SIDD (Abdelhamed et al., CVPR 2018; research use),
# as two public repositories committed them, into DEST (default data/pairs), laid out as
# `snl train --pairs` and `snl bench pairs` read them (noisy/ and clean/, matching names):
#
#   sidd-small        160 pairs, one per scene instance of SIDD-Small sRGB (5 phones: Galaxy S6,
#                     Pixel, iPhone 7, Nexus 6, LG G4), each whole frame resized to 256x256;
#                     from Paul-Fontaine/denoise_with_AutoEncoders at 71960c6. Training.
#   sidd-native-test  12 crops at the phones' own pixel scale (241-1024 px; 16-30 dB noisy);
#                     from yilmazdoga/deep-residual-autoencoder-for-real-image-denoising at
#                     ff5433c. Evaluation only.
#
# SMALL_GITDIR and SAMPLES_GITDIR are git directories of copies of those repositories. Every
# file is checked against scripts/sidd-pairs.SHA256SUMS.
set -euo pipefail
[ $# -ge 2 ] || { sed -n 2,16p "$0" >&2; exit 2; }
small=$1 samples=$2 dest=${3:-data/pairs}
sums=$(cd "$(dirname "$0")" && pwd)/sidd-pairs.SHA256SUMS
small_commit=71960c66fe7b43330feec7717fd90949537268d0
samples_commit=ff5433c6728bed0258c4a76e2b1067581055cf55
has_commit() {
  git --git-dir "$1" cat-file -e "$2^{commit}" 2>/dev/null \
    || { echo "extract_sidd_pairs: $1 has no commit $2 (a copy of the wrong repository?)" >&2; exit 1; }
}
has_commit "$small" "$small_commit"
has_commit "$samples" "$samples_commit"
mkdir -p "$dest"/sidd-small/{noisy,clean} "$dest"/sidd-native-test/{noisy,clean}
c=$small_commit
for scene in $(git --git-dir "$small" ls-tree --name-only "$c" SIDD_Small_sRGB_Only/Data/); do
  name=$(basename "$scene").png
  git --git-dir "$small" show "$c:$scene/NOISY_SRGB_010.PNG" > "$dest/sidd-small/noisy/$name"
  git --git-dir "$small" show "$c:$scene/GT_SRGB_010.PNG" > "$dest/sidd-small/clean/$name"
done
c=$samples_commit src=datasets/SIDD_Dataset/Sample_Images
for i in $(seq 0 11); do
  name=$(printf %02d "$i").png
  git --git-dir "$samples" show "$c:$src/Noisy_Images/NOISY_$i.png" > "$dest/sidd-native-test/noisy/$name"
  git --git-dir "$samples" show "$c:$src/GT_Images/GT_$i.png" > "$dest/sidd-native-test/clean/$name"
done
(cd "$dest" && sha256sum --quiet -c "$sums") || { echo "extract_sidd_pairs: checksum mismatch in $dest" >&2; exit 1; }
echo "extract_sidd_pairs: $(wc -l < "$sums") files into $dest/sidd-small and $dest/sidd-native-test, all checksums match"
