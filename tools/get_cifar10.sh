#!/bin/sh
# Usage: tools/get_cifar10.sh DIR
# Makes DIR hold CIFAR-10 in the official binary layout (data_batch_1..5.bin,
# test_batch.bin, 30,730,000 bytes each). Sources, in this order:
#   1. DIR already complete: nothing to do;
#   2. the JPEG tree $NN_CIFAR10_JPEG, by default ../shared/data/cifar10-jpeg.tar.gz
#      next to the repository, packed with build/pack_images (see docs/DATA.md);
#   3. the official archive from the CIFAR-10 home page, downloaded with curl.
set -eu

die() { echo "get_cifar10: $*" >&2; exit 1; }

[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
dir=$1
repo=$(cd "$(dirname "$0")/.." && pwd)
jpeg=${NN_CIFAR10_JPEG:-$repo/../shared/data/cifar10-jpeg.tar.gz}
url=https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz
files="data_batch_1.bin data_batch_2.bin data_batch_3.bin data_batch_4.bin data_batch_5.bin test_batch.bin"

is_complete() {
    for f in $files; do
        [ -f "$dir/$f" ] && [ "$(wc -c < "$dir/$f")" -eq 30730000 ] || return 1
    done
}

if is_complete; then
    echo "get_cifar10: $dir is complete (6 batch files of 30,730,000 bytes); nothing to do"
    exit 0
fi

# Unpacking 60,000 small files to a busy disk can take a minute; a tmpfs takes
# seconds. Use /dev/shm when TMPDIR is unset and it has room for the ~250 MB tree.
tmp_parent=${TMPDIR:-/tmp}
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ] &&
   [ "$(df -Pk /dev/shm | awk 'NR == 2 { print $4 }')" -gt 600000 ]; then
    tmp_parent=/dev/shm
fi
tmp=$(mktemp -d "$tmp_parent/get_cifar10.XXXXXX") || die "cannot create a temporary folder"
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM HUP
mkdir -p "$dir" || die "cannot create $dir"

if [ -f "$jpeg" ]; then
    packer=$repo/build/pack_images
    [ -x "$packer" ] || die "$packer is missing: run 'make tools' first"
    echo "get_cifar10: unpacking $jpeg"
    tar -xzf "$jpeg" -C "$tmp" || die "cannot unpack $jpeg"
    [ -d "$tmp/cifar10-jpeg/train" ] || die "$jpeg does not hold cifar10-jpeg/train"
    echo "get_cifar10: packing the images into $dir"
    "$packer" "$tmp/cifar10-jpeg" "$dir" || die "packing failed"
else
    echo "get_cifar10: $jpeg not found; downloading $url"
    curl -fL --retry 3 -o "$tmp/cifar-10-binary.tar.gz" "$url" || die "download of $url failed"
    tar -xzf "$tmp/cifar-10-binary.tar.gz" -C "$tmp" || die "cannot unpack the download"
    for f in $files batches.meta.txt; do
        [ -f "$tmp/cifar-10-batches-bin/$f" ] || die "the download lacks cifar-10-batches-bin/$f"
    done
    for f in $files batches.meta.txt; do
        mv "$tmp/cifar-10-batches-bin/$f" "$dir/$f" || die "cannot move $f into $dir"
    done
fi

is_complete || die "$dir is still incomplete (expected 6 batch files of 30,730,000 bytes)"
echo "get_cifar10: $dir is ready"
