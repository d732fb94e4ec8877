# nn.h - build, test, data, run, bench.  Binaries go to build/.
CC      ?= cc
CFLAGS  ?= -O2 -g
WARN     = -std=c99 -Wall -Wextra -Wpedantic
LDLIBS   = -lm -lpthread
STB_CFLAGS := $(shell pkg-config --cflags stb 2>/dev/null || echo -I/usr/include/stb)
PREFIX  ?= /usr/local
B        = build
DATA_DIR = data/cifar-10-batches-bin

TEST_SRC  = $(wildcard tests/test_*.c)
TESTS     = $(patsubst tests/%.c,$(B)/%,$(TEST_SRC))
ASAN_TESTS = $(patsubst tests/%.c,$(B)/asan/%,$(TEST_SRC))
# The kernel tests that also run on aarch64 under qemu (the NEON path), Winograd's
# transforms, the NaN tests of tests/test_numerics.c, the depthwise rows of
# tests/test_options.c and the int8 kernels of tests/test_quantize.c included.
NEON_TESTS = $(patsubst tests/%.c,$(B)/neon/%,$(wildcard tests/test_kernels*.c tests/test_core.c tests/test_winograd.c tests/test_numerics.c tests/test_options.c tests/test_quantize.c))
# embed.c compiles a model in, so it has its own rule (make embed) and is not built here.
# mpi_train.c needs MPI, so it has its own rule (make mpi) too.
EXAMPLE_SRC = $(filter-out examples/embed.c examples/mpi_train.c,$(wildcard examples/*.c))
EXAMPLES  = $(patsubst examples/%.c,$(B)/%,$(EXAMPLE_SRC))
TOOLS     = $(B)/pack_images $(B)/unpack_images $(B)/embed_model $(B)/nn
# The model `make embed` compiles into build/embed (tests/smoke.sh trains this one).
MODEL   ?= $(B)/smoke/mlp.safetensors

.PHONY: all test test-asan test-neon test-cxx check interop examples tools embed data fashion-data \
        run bench bench-gemm bench-train bench-embed bench-speedrun install clean FORCE fuzz fuzz-build test-tsan test-valgrind test-windows mpi

all: tools examples $(TESTS)

$(B)/test_%: tests/test_%.c nn.h tests/harness.h tests/gradcheck.h examples/plot.h
	@mkdir -p $(B)
	$(CC) $(CFLAGS) $(WARN) -I. $< -o $@ $(LDLIBS)

$(B)/asan/test_%: tests/test_%.c nn.h tests/harness.h tests/gradcheck.h examples/plot.h
	@mkdir -p $(B)/asan
	$(CC) -O1 -g $(WARN) -fsanitize=address,undefined -fno-sanitize-recover=undefined \
	    -fno-omit-frame-pointer -I. $< -o $@ $(LDLIBS)

$(B)/neon/test_%: tests/test_%.c nn.h tests/harness.h tests/gradcheck.h
	@mkdir -p $(B)/neon
	aarch64-linux-gnu-gcc -O2 $(WARN) -static -I. $< -o $@ $(LDLIBS)

# test_npy is tools/npy.h's test, test_nn_tool the model tool's.
$(B)/test_npy $(B)/asan/test_npy: tools/npy.h
$(B)/test_nn_tool $(B)/asan/test_nn_tool: tools/nn.c tools/npy.h examples/models.h

# test_speedrun compiles examples/speedrun.c in (its whitening and net).
$(B)/test_speedrun $(B)/asan/test_speedrun: examples/speedrun.c examples/common.h

# test_numerics_scalar is test_numerics.c under NN_NO_SIMD.
$(B)/test_numerics_scalar $(B)/asan/test_numerics_scalar: tests/test_numerics.c
# test_options_scalar is test_options.c under NN_NO_SIMD.
$(B)/test_options_scalar $(B)/asan/test_options_scalar: tests/test_options.c

# docs/API.md against nn.h (every public name listed, every example compiles and runs);
# tests/check.sh runs it as its own stage and passes API_CHECK= to the unit stage.
API_CHECK = tests/api_check.sh

test: $(TESTS) $(B)/pack_images
	@tests/run.sh $(TESTS) $(API_CHECK)

test-asan: $(ASAN_TESTS)
	@ASAN_OPTIONS=detect_leaks=1 tests/run.sh $(ASAN_TESTS)

# qemu's default CPU has the dot-product extension (the int8 kernels take sdot); the
# Cortex-A53 has not (they take vmull/vmlal): test_quantize runs on both.
# The last line is the total of both runs.
test-neon: $(NEON_TESTS)
	@NN_EXPECT_QKERNEL=neon-sdot SUMMARY_FILE=$(B)/neon/summary.max tests/run.sh --prefix qemu-aarch64 \
	    $(NEON_TESTS); a=$$?; \
	NN_EXPECT_QKERNEL=neon SUMMARY_FILE=$(B)/neon/summary.a53 tests/run.sh \
	    --prefix "qemu-aarch64 -cpu cortex-a53" $(B)/neon/test_quantize; b=$$?; \
	cat $(B)/neon/summary.max $(B)/neon/summary.a53 | awk '{p += $$1; f += $$3} END {print p " passed, " f " failed"}'; \
	[ $$a -eq 0 ] && [ $$b -eq 0 ]

# The header must compile cleanly as C99 with gcc and clang and as C++.
test-cxx:
	@tests/compile_check.sh

# libFuzzer targets (clang): tests/fuzz/fuzz_<target>.c, each linked with nn.h built on
# a counting allocator (tests/fuzz/fuzz_common.c); make_corpus writes their seeds.
# `make fuzz` runs each for FUZZ_SECONDS (tests/fuzz/run.sh; crashes in build/fuzz/artifacts).
FUZZ_CC     ?= clang
FUZZ_SECONDS ?= 60
FUZZ_TARGETS = load_memory load_weights checkpoint cifar10 idx npy onnx
FUZZ_BINS    = $(patsubst %,$(B)/fuzz/fuzz_%,$(FUZZ_TARGETS))
FUZZ_FLAGS   = -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined

$(B)/fuzz/common.o: tests/fuzz/fuzz_common.c tests/fuzz/fuzz.h nn.h
	@mkdir -p $(B)/fuzz
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link $(WARN) -c $< -o $@

$(B)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h tests/fuzz/mutator.h tools/npy.h $(B)/fuzz/common.o
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer $(WARN) $< $(B)/fuzz/common.o -o $@ $(LDLIBS)

$(B)/fuzz/make_corpus: tests/fuzz/make_corpus.c tests/fuzz/fuzz_common.c tests/fuzz/fuzz.h nn.h tools/npy.h tests/onnx_model.h
	@mkdir -p $(B)/fuzz
	$(FUZZ_CC) -O1 -g $(WARN) tests/fuzz/make_corpus.c tests/fuzz/fuzz_common.c -o $@ $(LDLIBS)

fuzz-build: $(FUZZ_BINS) $(B)/fuzz/make_corpus

fuzz: fuzz-build
	@tests/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# ThreadSanitizer on the tests that run the thread pool: GEMM and the pool itself
# (test_kernels), training on 1-3 threads (test_determinism, test_winograd), the layers,
# nets and optimisers (NN_THREADS=3 where a test does not set the count itself).
# A report makes the test exit with status 66; the reports are in build/tsan/report.*.
TSAN_CC   ?= clang
TSAN_TESTS = $(patsubst %,$(B)/tsan/test_%,kernels determinism winograd layers net optim)

$(B)/tsan/test_%: tests/test_%.c nn.h tests/harness.h tests/gradcheck.h examples/plot.h
	@mkdir -p $(B)/tsan
	$(TSAN_CC) -O1 -g $(WARN) -fsanitize=thread -I. $< -o $@ $(LDLIBS)

test-tsan: $(TSAN_TESTS)
	@rm -f $(B)/tsan/report.*
	@NN_THREADS=3 TSAN_OPTIONS="log_path=$(B)/tsan/report" tests/run.sh $(TSAN_TESTS)

# Windows: the unit tests cross-compiled with MinGW-w64 (the Windows C runtime, and
# winpthreads for the pool; linked statically) and run under Wine (tests/windows_check.sh).
# Left out: the tests that fork or set resource limits (sys/wait.h, sys/resource.h) and
# the model tool's (a POSIX mkdir). build/win/include/stb points at the stb headers.
WIN_CC    ?= x86_64-w64-mingw32-gcc
WIN_TESTS  = $(patsubst tests/%.c,$(B)/win/%.exe,$(filter-out tests/test_data.c tests/test_hostile.c \
             tests/test_misuse.c tests/test_onnx_export.c tests/test_nn_tool.c,$(TEST_SRC)))

$(B)/win/include/stb:
	@mkdir -p $(B)/win/include
	ln -sfn "$$(pkg-config --variable=includedir stb 2>/dev/null || echo /usr/include/stb)" $@

$(B)/win/test_%.exe: tests/test_%.c nn.h tests/harness.h tests/gradcheck.h examples/plot.h | $(B)/win/include/stb
	$(WIN_CC) -O2 $(WARN) -static -I. -isystem $(B)/win/include $< -o $@ -lm

$(B)/win/test_speedrun.exe: examples/speedrun.c examples/common.h
$(B)/win/test_numerics_scalar.exe: tests/test_numerics.c
$(B)/win/test_options_scalar.exe: tests/test_options.c

test-windows: $(WIN_TESTS)
	@tests/windows_check.sh $(WIN_TESTS)

# valgrind's memcheck on the unit tests that finish in seconds under it; reports in
# build/valgrind/. Leaks count when definite: the main thread's GEMM workspace, kept
# for reuse and freed at exit only when the pool ran, is held through nn.h's 64-byte
# aligned pointer into its block, which valgrind calls "possibly lost".
VALGRIND_TESTS = $(patsubst %,$(B)/test_%,core data model optim net plot)
VALGRIND = valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
           --log-file=$(B)/valgrind/%p.log

test-valgrind: $(VALGRIND_TESTS)
	@rm -rf $(B)/valgrind; mkdir -p $(B)/valgrind
	@NN_THREADS=2 tests/run.sh --prefix "$(VALGRIND)" $(VALGRIND_TESTS)

# nn.h <-> PyTorch model files (needs Debian's python3-torch; check runs it in tests/torch.sh),
# torchvision's resnet18 / mobilenet_v2 through build/nn (tests/models_torch.sh), PyTorch's
# ONNX exports of them through build/nn (tests/onnx_torch.sh), nn_quantize against
# torch.ao.quantization (tests/quantize_torch.sh), their training steps and
# examples/resnet.c's model (tests/train_torch.sh), the airbench94 recipe's training
# features (tests/recipe_torch.sh), and the ONNX export in onnx.checker and OpenCV
# (tests/onnx_export.sh).
interop:
	@tests/interop.sh
	@tests/models_torch.sh
	@tests/onnx_torch.sh
	@COUNT=200 TEST=500 tests/quantize_torch.sh
	@tests/train_torch.sh
	@tests/recipe_torch.sh
	@tests/onnx_export.sh

# Everything CI runs; ends with the total "N passed, N failed".
check:
	@tests/check.sh

$(B)/%: examples/%.c nn.h examples/common.h examples/plot.h examples/models.h examples/image.h examples/report.h examples/train.h examples/stb_impl.h
	@mkdir -p $(B)
	$(CC) $(CFLAGS) $(WARN) -I. $(STB_CFLAGS) $< -o $@ $(LDLIBS)

examples: $(EXAMPLES)

# Data-parallel training across processes: examples/mpi_train.c and tests/mpi_test.c,
# built with mpicc where MPI is installed (nn.h itself never includes or links MPI);
# tests/mpi_check.sh (the mpi stage of make check) runs them under mpirun.
MPICC ?= mpicc
MPI_BINS = $(B)/mpi_train $(B)/mpi_test
mpi:
	@if command -v $(MPICC) >/dev/null 2>&1; then $(MAKE) --no-print-directory $(MPI_BINS); \
	else echo "make mpi: $(MPICC) not found (install libopenmpi-dev and openmpi-bin)"; exit 1; fi

$(B)/mpi_train: examples/mpi_train.c nn.h examples/common.h examples/plot.h examples/models.h
	@mkdir -p $(B)
	$(MPICC) $(CFLAGS) $(WARN) -I. $(STB_CFLAGS) $< -o $@ $(LDLIBS)

$(B)/mpi_test: tests/mpi_test.c nn.h
	@mkdir -p $(B)
	$(MPICC) $(CFLAGS) $(WARN) -I. $< -o $@ $(LDLIBS)

$(B)/pack_images: tools/pack_images.c examples/stb_impl.h
	@mkdir -p $(B)
	$(CC) $(CFLAGS) $(WARN) $(STB_CFLAGS) $< -o $@ -lm

$(B)/unpack_images: tools/unpack_images.c
	@mkdir -p $(B)
	$(CC) $(CFLAGS) $(WARN) $(STB_CFLAGS) $< -o $@ -lm

$(B)/embed_model: tools/embed_model.c
	@mkdir -p $(B)
	$(CC) $(CFLAGS) $(WARN) $< -o $@

# The model tool: info, run on .npy, convert PyTorch state_dicts (installed as bin/nn).
$(B)/nn: tools/nn.c tools/npy.h nn.h examples/models.h
	@mkdir -p $(B)
	$(CC) $(CFLAGS) $(WARN) -I. $< -o $@ $(LDLIBS)

tools: $(TOOLS)

# An app with the model inside: MODEL -> build/model_data.c (a C array) -> build/embed.
# The array is regenerated on every run but replaced only when it changed, so a
# different MODEL=... rebuilds the app and the same one does not.
$(B)/model_data.c: $(B)/embed_model FORCE
	@test -f "$(MODEL)" || { echo "no model at $(MODEL): train one (tests/smoke.sh writes" \
	    "$(B)/smoke/mlp.safetensors) or give MODEL=path/to/model.safetensors"; exit 1; }
	@$(B)/embed_model --name nn_model "$(MODEL)" $@.new > /dev/null
	@if cmp -s $@.new $@; then rm -f $@.new; else mv $@.new $@; echo "$(MODEL) -> $@"; fi

$(B)/embed: examples/embed.c $(B)/model_data.c nn.h examples/image.h examples/stb_impl.h
	$(CC) $(CFLAGS) $(WARN) -I. -I$(B) $(STB_CFLAGS) $< -o $@ $(LDLIBS)

embed: $(B)/embed

FORCE:

# CIFAR-10 in the official binary layout, from ../shared's JPEGs or the official archive.
data: $(B)/pack_images
	@tools/get_cifar10.sh $(DATA_DIR)

fashion-data:
	@tools/get_fashion_mnist.sh data/fashion-mnist

run: data $(B)/mlp
	$(B)/mlp --data_dir $(DATA_DIR)

bench: bench-gemm bench-train

$(B)/bench_train: bench/train.c nn.h examples/common.h examples/models.h
	@mkdir -p $(B)
	$(CC) $(CFLAGS) $(WARN) -I. $< -o $@ $(LDLIBS)

# Whole-network throughput, nn.h against PyTorch (Debian's python3-torch), alternately.
bench-train: $(B)/bench_train
	bench/train.sh

$(B)/bench_gemm_kernels: bench/gemm_kernels.c nn.h
	@mkdir -p $(B)
	$(CC) $(CFLAGS) $(WARN) -I. $< -o $@ $(LDLIBS)

$(B)/bench_embed: bench/embed.c nn.h examples/common.h examples/models.h
	@mkdir -p $(B)
	$(CC) $(CFLAGS) $(WARN) -I. $< -o $@ $(LDLIBS)

# Batch-1 and batch-32 inference of the VGG ConvNet, float32 and int8, nn.h against
# PyTorch, alternately; MODEL=path/convnet.safetensors adds the test accuracy.
bench-embed: $(B)/bench_embed
	bench/embed.sh

$(B)/bench_speedrun: bench/speedrun.c examples/speedrun.c nn.h examples/common.h examples/plot.h
	@mkdir -p $(B)
	$(CC) $(CFLAGS) $(WARN) -I. $(STB_CFLAGS) $< -o $@ $(LDLIBS)

# One epoch of the airbench94 recipe (examples/speedrun.c), nn.h against PyTorch
# (bench/speedrun_torch.py), alternately: STEPS= steps timed after a warm-up step and
# scaled to the epoch's 48 (3), THREADS= (2), ROUNDS= (1).
bench-speedrun: $(B)/bench_speedrun
	bench/speedrun.sh

# OpenBLAS is linked into the benchmark only, never into nn.h.
$(B)/bench_gemm: bench/gemm.c nn.h
	@mkdir -p $(B)
	$(CC) -O2 -g $(WARN) -I. $< -o $@ -lopenblas $(LDLIBS)

bench-gemm: $(B)/bench_gemm
	$(B)/bench_gemm


install: nn.h $(B)/nn
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/bin
	install -m 644 nn.h $(DESTDIR)$(PREFIX)/include/nn.h
	install -m 755 $(B)/nn $(DESTDIR)$(PREFIX)/bin/nn
	sed -e 's|@PREFIX@|$(PREFIX)|' tools/nn.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/nn.pc

clean:
	rm -rf $(B)
