#!/bin/sh
# Usage: tools/get_fashion_mnist.sh DIR
# Unpacks the four gzipped Fashion-MNIST IDX files of Debian's dataset-fashion-mnist
# package into DIR (train-images-idx3-ubyte, train-labels-idx1-ubyte,
# t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte). Files already there with the right
# size are kept. Set NN_FASHION_MNIST_SRC to read the .gz files from another folder.
set -eu

die() { echo "get_fashion_mnist: $*" >&2; exit 1; }

[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
dir=$1
src=${NN_FASHION_MNIST_SRC:-/usr/share/datasets/fashion-mnist}

# name:size of each unpacked file
files="train-images-idx3-ubyte:47040016 train-labels-idx1-ubyte:60008
t10k-images-idx3-ubyte:7840016 t10k-labels-idx1-ubyte:10008"

mkdir -p "$dir" || die "cannot create $dir"
for entry in $files; do
    name=${entry%%:*}
    size=${entry#*:}
    if [ -f "$dir/$name" ] && [ "$(wc -c < "$dir/$name")" -eq "$size" ]; then
        echo "get_fashion_mnist: $dir/$name is present"
        continue
    fi
    [ -f "$src/$name.gz" ] ||
        die "$src/$name.gz is missing: install it with 'apt-get install dataset-fashion-mnist'"
    gzip -dc "$src/$name.gz" > "$dir/$name.tmp" || { rm -f "$dir/$name.tmp"; die "cannot unpack $src/$name.gz"; }
    [ "$(wc -c < "$dir/$name.tmp")" -eq "$size" ] ||
        { rm -f "$dir/$name.tmp"; die "$src/$name.gz unpacks to an unexpected size (expected $size bytes)"; }
    mv "$dir/$name.tmp" "$dir/$name" || die "cannot write $dir/$name"
    echo "get_fashion_mnist: unpacked $dir/$name"
done
