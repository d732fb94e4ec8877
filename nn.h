/* nn.h - neural networks in one C header: tensors, a fast GEMM, layers with their
   backward passes, optimisers, CIFAR-10 / IDX data and safetensors model files.

   Do this:
       #define NN_IMPLEMENTATION
   before you include this file in *one* C or C++ file to create the implementation.
   Every other file includes "nn.h" without the define and sees only the declarations.

   Contents: 1 quick start, 2 building, 3 configuration macros, 4 errors, 5 threads
   and determinism, 6 limitations, 7 limits and untrusted input, 8 memory, 9 NaN and
   divergence, 10 file formats, 11 training across processes, 12 more documentation,
   13 version history. The examples between ```c and ``` lines are whole programs:
   tests/api_check.sh compiles and runs each of them, as it does docs/API.md's.

   ---------------------------------------------------------------------------------
   1. QUICK START
   ---------------------------------------------------------------------------------

   A two-layer net learns which points of the plane lie inside a circle; for CIFAR-10
   fill the set with nn_cifar10_load(dir, &train, &test) instead (examples/mlp.c).

   ```c
   #define NN_IMPLEMENTATION
   #include "nn.h"
   #include <math.h>

   int main(void)
   {
       enum { N = 2000, B = 50 };
       static float points[N * 2];
       static int inside[N];
       nn_rng r = nn_rng_new(1);
       for (int i = 0; i < N; i++) {
           float a = 2 * nn_rng_uniform(&r) - 1, b = 2 * nn_rng_uniform(&r) - 1;
           points[2 * i] = a;
           points[2 * i + 1] = b;
           inside[i] = a * a + b * b < 0.5f;
       }
       nn_dataset train = { .n = N, .shape = nn_shape1(2), .num_classes = 2,
                            .x = points, .y = inside };   // the program's own arrays

       nn_net *net = nn_net_new(nn_shape1(2));
       nn_add(net, nn_linear(32));
       nn_add(net, nn_relu());
       nn_add(net, nn_linear(2));
       if (nn_build(net, B, 42) != NN_OK) { fprintf(stderr, "%s\n", nn_error()); return 1; }
       nn_optim *opt = nn_adam(net, (nn_adam_desc){ .lr = 0.01f });

       float x[B * 2], accuracy;
       int y[B];
       nn_batch_start(&train, 42);
       for (int step = 0; step < 2000; step++) {
           nn_next_batch(&train, B, x, y);
           float loss = nn_train_step(net, opt, x, y, B);
           if (isnan(loss)) { fprintf(stderr, "%s\n", nn_error()); return 1; }
       }
       if (nn_evaluate(net, &train, NULL, &accuracy, NULL) != NN_OK ||
           nn_save(net, "circle.safetensors") != NN_OK) {
           fprintf(stderr, "%s\n", nn_error());
           return 1;
       }
       printf("accuracy %.3f\n", accuracy);
       nn_optim_free(opt);
       nn_dataset_free(&train);   // the batcher's order; x and y stay the program's
       nn_net_free(net);
       return accuracy > 0.9f ? 0 : 1;
   }
   ```

   ---------------------------------------------------------------------------------
   2. BUILDING
   ---------------------------------------------------------------------------------

   nn.h needs the C library, libm and, unless NN_NO_THREADS, POSIX threads:
       cc -O2 my_program.c -lm -lpthread            gcc or clang, C99 or later
       c++ -O2 my_program.cpp -lpthread             g++ or clang++, C++11 or later
       aarch64-linux-gnu-gcc -O2 my_program.c -lm -lpthread     NEON kernels
   No -march flag is needed: on x86-64 the AVX2+FMA kernels are compiled with target
   attributes and chosen at run time (cpuid), so a plain -O2 binary runs on any x86-64
   and uses AVX2 where the CPU has it; aarch64 uses NEON (and sdot for int8 where the
   CPU has it); every other target runs the portable scalar kernels. nn_simd_name()
   says which. The header is also correct without fast-math; do not use -Ofast.
   In a program of several files, define NN_IMPLEMENTATION in one of them; with
   NN_STATIC instead every function is static, private to the one file that includes
   the implementation (two files may then each have their own copy).
   C++: the declarations sit in extern "C" and the implementation compiles as C++11
   to C++17 (the examples' compound literals, (nn_adam_desc){ .lr = ... }, are C only:
   in C++ fill a nn_adam_desc d = {} field by field).
   Windows with MinGW-w64 (gcc, the Windows C runtime, winpthreads):
       x86_64-w64-mingw32-gcc -O2 my_program.c -static -lm
   gets the same kernels, threads and files (Windows' rename does not replace a file,
   so a save over an existing model removes it just before the rename: the one moment
   that is not atomic there); the thread count comes from NUMBER_OF_PROCESSORS.
   `make test-windows` builds the unit tests so and runs them under Wine.
   MSVC has not been tested: it has no pthreads, so define NN_NO_THREADS; it gets the
   scalar kernels (the SIMD ones are built with GCC/Clang attributes) and
   __declspec(thread) for the thread-local error message. tests/compile_check.sh
   builds the header warning-free with gcc, clang, g++ and clang++ (-Wall -Wextra
   -Wpedantic, C99, C11, C++11, C++17) under every configuration macro.

   ---------------------------------------------------------------------------------
   3. CONFIGURATION MACROS (define before including)
   ---------------------------------------------------------------------------------

       NN_IMPLEMENTATION   compile the implementation in this translation unit
       NN_STATIC           make every function static (private to one file)
       NNDEF               the linkage of every public function (default extern, or
                           static under NN_STATIC); define it to add an attribute, e.g.
                           __attribute__((visibility("default"))) for a shared library
       NN_MALLOC(size)     allocator (default malloc); define NN_FREE(p) with it
       NN_FREE(p)          deallocator (default free)
       NN_ASSERT(cond)     checks of the library's own invariants (default assert: the
                           error status is never NN_OK, buffers are 64-byte aligned);
                           never used on anything a user or a file can get wrong
       NN_THREAD_LOCAL     the storage class of per-thread state (the error message,
                           the pool's per-thread flag and GEMM workspace); by default
                           thread_local (C++11), _Thread_local (C11), __declspec(thread)
                           (MSVC) or __thread (GCC, Clang), the first the compiler has
       NN_NO_SIMD          use only the portable scalar kernels (the test reference)
       NN_NO_THREADS       no thread pool; everything runs on the calling thread
       NN_NO_STDIO         no file I/O (for embedded inference from memory)
       NN_NO_FUSION        run a BatchNorm and the ReLU after it as two passes (for
                           benchmarks and tests; the fused pass gives the same bits)
       NN_NO_WINOGRAD      compute every Conv2d through im2col + GEMM; by default the
                           3x3 / stride 1 / padding 1 layers with NN_WINO_MIN_CHANNELS
                           or more input channels use Winograd F(2x2, 3x3) for batches
                           of NN_WINO_MIN_TILES or more 2x2 output blocks (2.25x fewer
                           multiply-adds; results within a few float eps of the direct
                           sums, not the same bits)
       NN_NO_ONNX          leave out the ONNX reader and writer (nn_load_onnx,
                           nn_save_onnx)
       NN_MAX_BUILD_BYTES  the most memory nn_build and the loaders may allocate for
                           one net's buffers (default 8 GiB; 1 GiB on 32-bit systems)
     Tuning (the defaults are measured; docs/PERFORMANCE.md):
       NN_WINO_MIN_CHANNELS  Winograd's least input channels (default 16)
       NN_WINO_MIN_TILES     Winograd's least 2x2 output tiles in a batch (default 64)
       NN_CONV_KEEP_COLS   floats (default 2^26, 256 MB) up to which a Conv2d keeps the
                           im2col columns of a whole batch from forward to backward
                           (one GEMM per product); above, one image at a time
       NN_WIDE_MAX_N       an inference-only net reads the weights in place (batch-1
                           path) for products of at most this many columns (default
                           64: output positions x batch)
       NN_WIDE_MAX_BATCH   ... and for a Linear of at most this batch (default 8)
       NN_WIDE_AHEAD       x86: how many floats that path prefetches ahead (1024)
     Environment:
       NN_THREADS          the default thread count (a positive integer; unset, 0 or
                           not a number: the online cores), read when nn_get_threads
                           is first needed and by nn_set_threads(0)

   ---------------------------------------------------------------------------------
   4. ERRORS
   ---------------------------------------------------------------------------------

   Functions that can fail return an nn_status (NN_OK is 0), or NULL, NaN or 0 where
   they return a pointer or a value. nn_error() then returns a sentence that names
   the problem, e.g.
       "data/test_batch.bin: size 30000 is not a multiple of the 3073-byte record".
   The message describes the latest call: every function that can fail clears it
   when it starts, so after a call that succeeded nn_error() is "no error", and a
   message is never left over from an earlier failure. Only the functions that cannot
   fail leave it as it is (the free functions, the layer descriptions nn_linear ...,
   nn_shape3, nn_shape_size, nn_status_name, nn_simd_name, nn_layer_name, nn_lr_*,
   nn_shard, nn_rng_new, nn_get_threads, nn_error itself). The message is per thread
   (NN_THREAD_LOCAL): a thread sees only its own calls' errors; the text is valid
   until that thread's next call into nn.h.
   The library never calls exit() or abort() on bad input. Pointer arguments are
   checked: a NULL where an object is needed is NN_ERR_ARG (NULL, or 0, from a function
   that returns a pointer or a value); the functions that free take NULL as a no-op.
   A call out of order (a net used before nn_build, nn_backward with no nn_forward
   since the build) is NN_ERR_STATE. The low-level kernels (nn_gemm, nn_im2col, ...)
   check sizes and NULL pointers but cannot check that arrays are as large as said.

   ```c
   #define NN_IMPLEMENTATION
   #include "nn.h"
   #include <string.h>

   int main(void)
   {
       nn_dataset d;
       nn_status s = nn_idx_load("no-such-images", "no-such-labels", &d);
       printf("%s: %s\n", nn_status_name(s), nn_error());
       nn_net *net = nn_net_new(nn_shape1(4));   // succeeds: the message is cleared
       if (s != NN_ERR_IO || !net || strcmp(nn_error(), "no error")) return 1;
       nn_net_free(net);
       return 0;
   }
   ```

   ---------------------------------------------------------------------------------
   5. THREADS AND DETERMINISM
   ---------------------------------------------------------------------------------

   GEMM and the layers split their work over a pool of nn_get_threads() - 1 worker
   threads plus the calling one; the count is NN_THREADS, else the online cores, at
   most 64, and nn_set_threads(n) changes it (call it while no other thread is inside
   nn.h). Workers are started on first use and stopped by an atexit hook.
   The same seed gives the same bits whatever the thread count: work is split so that
   no floating-point sum changes order with it (tests/test_determinism.c). Results
   are bit-identical from run to run on one machine; between kernel paths (AVX2+FMA,
   NEON, scalar) they differ by float rounding, and Winograd differs from im2col by a
   few eps; int8 nets give the same bits on every CPU. Randomness comes from seeded
   PCG32 streams only: nn_build's seed (initialisation, Dropout), nn_batch_start's
   (the order, the augmentation), never the time.
   Objects are not locked: one net (with its optimiser, average and data sets) must
   be used by one thread at a time, but different nets may run on different threads
   at once (a call that finds the pool busy runs on its own thread). A thread of the
   program that ran a GEMM frees its workspace when it exits.

   ```c
   #define NN_IMPLEMENTATION
   #include "nn.h"
   #include <string.h>

   static float run(int threads)   // one training step of a small ConvNet, seeded
   {
       float x[8 * 3 * 8 * 8], loss;
       int y[8];
       nn_set_threads(threads);
       nn_rng r = nn_rng_new(5);
       for (int i = 0; i < 8 * 3 * 8 * 8; i++) x[i] = nn_rng_normal(&r, 0, 1);
       for (int i = 0; i < 8; i++) y[i] = i % 4;
       nn_net *net = nn_net_new(nn_shape3(3, 8, 8));
       nn_add(net, nn_conv2d(16, 3, 1, 1));
       nn_add(net, nn_batchnorm());
       nn_add(net, nn_relu());
       nn_add(net, nn_flatten());
       nn_add(net, nn_linear(4));
       nn_build(net, 8, 7);
       nn_optim *opt = nn_sgd(net, (nn_sgd_desc){ .lr = 0.1f, .momentum = 0.9f });
       nn_train_step(net, opt, x, y, 8);
       loss = nn_train_step(net, opt, x, y, 8);
       nn_optim_free(opt);
       nn_net_free(net);
       return loss;
   }

   int main(void)
   {
       float one = run(1), two = run(2);
       printf("loss %.9g on 1 thread, %.9g on 2\n", one, two);
       return memcmp(&one, &two, sizeof one) == 0 ? 0 : 1;
   }
   ```

   ---------------------------------------------------------------------------------
   6. LIMITATIONS
   ---------------------------------------------------------------------------------

   - float32 throughout (inputs, parameters, gradients; sums of statistics in
     double); int8 only for inference, after nn_quantize. No float16 or bfloat16.
   - Layout NCHW: a batch is N x C x H x W, a sample's shape (c, h, w); a feature
     vector is (features, 1, 1). Parameters have at most NN_MAX_DIMS (4) dimensions.
   - CPU only: AVX2+FMA on x86-64, NEON on aarch64, scalar C elsewhere.
   - A net is a chain of layers with (nestable) residual blocks: one input, one
     output; nn_train_step's loss is softmax cross-entropy (for others: nn_forward, a
     loss of the Losses section, nn_backward, nn_optim_step).
   - Sizes: a sample's shape and every buffer hold at most INT_MAX values; a net's
     buffers at its max batch at most NN_MAX_BUILD_BYTES (8 GiB by default) in all;
     a parameter name has at most NN_MAX_NAME - 1 bytes; at most 64 threads. A model
     file may ask for no more than that: its net is built only if its buffers at the
     max_batch the program asked for fit in NN_MAX_BUILD_BYTES, and an ONNX file gets
     at most 64 bytes of memory per byte of the file plus 16 MiB to be read (7).

   ---------------------------------------------------------------------------------
   7. LIMITS AND UNTRUSTED INPUT
   ---------------------------------------------------------------------------------

   Model files, weights, checkpoints, CIFAR-10 and IDX files may come from anyone: a
   damaged or hostile file is an error (NN_ERR_FORMAT, NN_ERR_IO or NN_ERR_NOMEM with a
   sentence), never a crash, a hang or an allocation it did not pay for in bytes.
   - nn_load / nn_load_memory check every tensor (name, dtype F32, shape, offsets inside
     the data, no gaps, overlaps or trailing bytes, finite values) and the metadata
     before nn_build allocates anything; a short file cannot ask for a large array.
   - NN_MAX_BUILD_BYTES (default 8 GiB, 1 GiB where size_t has 32 bits) caps what one
     nn_build allocates for a net: every layer output and input gradient at max_batch,
     workspaces, parameters and gradients, the loss gradient and the parameter table,
     summed before anything is allocated (NN_ERR_NOMEM naming the macro). Define it
     lower before the implementation to load files from strangers on a small device.
   - No per-sample shape (the input, a layer's output) may hold more than INT_MAX
     values, nor one buffer more than INT_MAX floats (NN_ERR_ARG).
   - Metadata integers are exact decimals in range (no "1.9", no "-1" where a size is
     meant, no 4294967324); floats must be finite; JSON keys must not repeat; class
     names are UTF-8 without commas, one per output; nn_format must be "1".
   - nn_load_onnx(_memory) checks every protobuf length, count and index against the
     bytes there, nests at most 32 groups deep, and takes at most 64 bytes of memory per
     byte of the file plus 16 MiB to read it (and NN_MAX_BUILD_BYTES), before nn_build.
   - A failed nn_load_weights(_memory) or nn_load_checkpoint(_memory) leaves the net and
     the optimiser exactly as they were: everything is checked, then copied.
   - nn_save and nn_save_checkpoint write PATH.tmp beside the target and rename it over
     the target only once the whole file is written, flushed and synced, so a full
     disk, a crash or kill -9 never destroys the previous file (a target that exists
     and is not a regular file, such as /dev/full, is written in place).

   ---------------------------------------------------------------------------------
   8. MEMORY: WHO FREES WHAT
   ---------------------------------------------------------------------------------

   Buffers come from nn.h's 64-byte-aligned allocator on top of NN_MALLOC: never pass
   them to free(). Each release function accepts NULL.

       obtained from                        release with
       nn_net_new, nn_load, nn_load_memory  nn_net_free
       nn_sgd, nn_adam, nn_adamw, nn_adamax nn_optim_free (before or after its net)
       nn_ema_new                           nn_ema_free (before its net)
       nn_save_memory's *data               nn_free_buffer
       nn_save_onnx_memory's *data          nn_free_buffer
       a loader's nn_dataset (x, y)         nn_dataset_free
       nn_batch_start's order               nn_dataset_free (also on a set you
                                            filled yourself: owns_data = 0 leaves
                                            your x and y to you)

   Owned by the net and never freed by you: nn_forward's result (valid until the next
   nn_forward, nn_build, nn_inference_only or nn_net_free), nn_input_grad (until the
   next nn_backward or build), the nn_layer and nn_param pointers and their arrays (until
   the next nn_build; nn_inference_only drops gradients and layer buffers), nn_class_name
   (until the next nn_set_class_names). nn_error()'s text is per thread, valid until
   that thread's next call into nn.h. Values given to the setters are copied.

   ---------------------------------------------------------------------------------
   9. NaN, INFINITY AND DIVERGENCE
   ---------------------------------------------------------------------------------

   Every layer, loss and pooling passes NaN and infinity on as PyTorch 1.13 does, on
   every path (scalar, AVX2, NEON, the fused BatchNorm + ReLU, Winograd): ReLU keeps a
   NaN and passes its gradient, MaxPool2d's NaN wins its window and the last NaN gets the
   gradient, nn_argmax takes the first NaN (the comments at each declaration say more).
   Training never diverges silently: nn_train_step and nn_optim_step compute every new
   value before storing any, and a non-finite loss, gradient or updated parameter is
   NN_ERR_NUMERIC naming the step and the first layer or parameter where it appeared,
   with the parameters, moments, running statistics and step count left as they were.
   nn_set_check_input(net, 1) also refuses an input batch holding a NaN or infinity.

   ---------------------------------------------------------------------------------
   10. FILE FORMATS
   ---------------------------------------------------------------------------------

   Model files are safetensors (nn_save, nn_load, nn_save_memory, nn_load_memory): an
   8-byte little-endian header length, a JSON header naming each tensor (dtype,
   shape, byte offsets) with a "__metadata__" object of strings that describes the
   architecture, the preprocessing and the class names, then the raw little-endian
   float32 data. Tensor names are PyTorch's state_dict keys, so PyTorch reads the
   weights as they are and nn_load_weights reads PyTorch's into a net built by the
   program; nn_load rebuilds the net from the metadata alone. docs/FORMAT.md.
   Checkpoints (nn_save_checkpoint, nn_load_checkpoint(_memory)) are model files that
   also hold the optimiser's moments and step, the parameter options, the label
   smoothing and the net's random state, so that training resumes bit for bit; they
   load into the same net and optimiser kind. docs/FORMAT.md, "Tensors".
   int8 models (nn_quantize, then nn_save) keep I8 weights with per-channel scales
   and the activations' scales and zero points in the same container, about a
   quarter of the float file; nn_load gives back the int8 net. docs/FORMAT.md,
   "int8 models".
   ONNX: nn_load_onnx reads what torch.onnx.export writes (a chain of the operators
   nn.h has layers for, residual Adds; opsets 1 to 20) and nn_save_onnx writes opset
   13 (OpenCV and a numpy interpreter check it). docs/ONNX.md lists the operators, the
   mapping and what differs.
   Data: CIFAR-10's binary batches (records of 1 label byte and 3 x 32 x 32 pixel
   bytes, nn_cifar10_load) and MNIST's IDX files (u8 images and labels, uncompressed,
   nn_idx_load), both read into float pixels 0..255; tools/pack_images packs a folder
   of images into CIFAR-10's format. docs/DATA.md.

   ---------------------------------------------------------------------------------
   11. TRAINING ACROSS PROCESSES (DATA PARALLEL, E.G. WITH MPI)
   ---------------------------------------------------------------------------------

   nn.h links no communication library. Every process builds the same net with the
   same seed (the same parameters everywhere) and gives nn.h a function that sums a
   buffer across the processes (with MPI, MPI_Allreduce with MPI_IN_PLACE); each
   process's batcher is sharded, so it draws its own part of every global batch.
   The program below is one process of P = 1; with MPI, rank and P come from
   MPI_Comm_rank and MPI_Comm_size and sum calls
       MPI_Allreduce(MPI_IN_PLACE, buf, (int)count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD)
   (nn_set_sync_batchnorm: optional).

   ```c
   #define NN_IMPLEMENTATION
   #include "nn.h"
   #include <math.h>

   static int sum(float *buf, size_t count, void *ctx)   // 0: done
   {
       (void)buf; (void)count; (void)ctx;   // one process: its buffer is the sum
       return 0;
   }

   int main(void)
   {
       enum { N = 64, B = 16, SAMPLE = 3 * 4 * 4 };
       int rank = 0, P = 1;
       static float pixels[N * SAMPLE], x[B * SAMPLE];
       static int labels[N], y[B];
       for (int i = 0; i < N * SAMPLE; i++) pixels[i] = (float)(i % 7);
       for (int i = 0; i < N; i++) labels[i] = i % 2;
       nn_dataset train = { .n = N, .shape = nn_shape3(3, 4, 4), .num_classes = 2,
                            .x = pixels, .y = labels };
       int local = nn_shard(B, rank, P, NULL);   // this process's part of a batch
       nn_net *net = nn_net_new(train.shape);
       nn_add(net, nn_flatten());
       nn_add(net, nn_linear(2));
       if (nn_build(net, local, 1) != NN_OK || nn_set_allreduce(net, sum, NULL, P) != NN_OK ||
           nn_batch_start(&train, 1) != NN_OK || nn_batch_shard(&train, rank, P) != NN_OK)
           return 1;
       nn_optim *opt = nn_sgd(net, (nn_sgd_desc){ .lr = 0.001f });
       for (int step = 0; step < 8; step++) {
           nn_next_batch(&train, B, x, y);   // B: the global batch
           if (isnan(nn_train_step(net, opt, x, y, local))) {
               fprintf(stderr, "%s\n", nn_error());
               return 1;
           }
       }
       printf("%ld steps of %d samples each on %d process(es)\n", nn_optim_steps(opt), local, P);
       nn_optim_free(opt);
       nn_dataset_free(&train);
       nn_net_free(net);
       return 0;
   }
   ```

   The step sums the gradients in a few large buckets and divides them by P, so every
   process applies the same update; with B a multiple of P (and without BatchNorm, or
   with it synchronised) the result is one process's with the batch of B within float
   rounding. Evaluate a share of the test set each (nn_shard) and sum the confusion
   matrices. examples/mpi_train.c is the whole program; docs/API.md the details.

   ---------------------------------------------------------------------------------
   12. MORE DOCUMENTATION
   ---------------------------------------------------------------------------------

   docs/API.md lists every public type, macro and function, one line each, grouped as
   the declarations below, each group with an example (compiled and run, as these).
   The comment above each declaration says the rest. Beside it: docs/FORMAT.md (model
   files), docs/ONNX.md, docs/DATA.md (data sets, batcher, augmentation),
   docs/BACKPROP.md (the math of every backward pass), docs/PERFORMANCE.md (kernels and
   measurements), docs/FUZZING.md, and README.md with the examples/ that reproduce
   PyTorch training runs.

   ---------------------------------------------------------------------------------
   13. VERSION HISTORY
   ---------------------------------------------------------------------------------

       0.5.0  (2026-12-02) an API with no traps: nn_error() describes the latest call
              (every function that can fail clears it first; per thread with the
              language's thread-local keyword: C11 _Thread_local, C++11 thread_local,
              MSVC __declspec(thread), else __thread; NN_THREAD_LOCAL overrides);
              NNDEF overridable; the tuning macros public (NN_WINO_MIN_CHANNELS,
              NN_WINO_MIN_TILES, NN_CONV_KEEP_COLS, NN_WIDE_MAX_N, NN_WIDE_MAX_BATCH,
              NN_WIDE_AHEAD); NN_ASSERT guards the library's invariants; nn_load's
              evaluation mode documented; the manual's building, threads and
              determinism, limitations and file-format sections, its examples
              compiled and run; an AVX-512F GEMM kernel chosen at run time (12 x 32
              tiles, the AVX2 kernel's bits, 1.47-1.90x its speed on Zen 5); Windows
              builds with MinGW-w64 (the thread count from NUMBER_OF_PROCESSORS; the
              unit tests run under Wine).
              Incompatible: nn_num_params is now nn_num_param_tensors and
              nn_param_count nn_num_param_scalars; nn_get_layer returns a
              const nn_layer *; nn_tensor, nn_tensor_alloc and nn_tensor_free are gone
       0.4.0  reach and small apps: ONNX import and export (nn_load_onnx, nn_save_onnx;
              NN_NO_ONNX leaves them out); int8 post-training quantization with
              PyTorch's definitions (nn_quantize, nn_is_quantized; int8 model files;
              AVX2, NEON and sdot kernels); an inference-only net's small-batch
              products read the weights in place (batch-1 latency); data-parallel
              training hooks (nn_set_allreduce, nn_set_sync_batchnorm, nn_shard,
              nn_batch_shard); the airbench94 recipe's features: parameter options
              (nn_set_param_options: lr/wd multipliers, frozen), label smoothing
              (nn_set_label_smoothing, nn_softmax_cross_entropy_smooth),
              nn_lr_triangular, weight averaging (nn_ema_*), the alternating flip and
              reflection padding in the batcher, test-time augmentation
              (nn_forward_tta, nn_evaluate_tta). Incompatible: nn_augment has a third
              field (reflect), nn_param one more (options), nn_dataset three more
       0.3.0  ResNets and MobileNets: residual blocks (nn_block, nn_shortcut,
              nn_block_end, nestable) on one build-time plan that lays every activation,
              gradient and workspace out in one arena (nn_inference_only replans by
              lifetimes); parameter names users set (nn_named, NN_MAX_NAME 64), so that
              torchvision's state_dicts load strictly; one named field per option in
              nn_layer_desc; Conv2d groups with a depthwise path, rectangular kernel,
              stride and padding, dilation; MaxPool2d/AvgPool2d ceil_mode and
              exclude_pad; BatchNorm momentum, eps, no_affine; Hardtanh and ReLU6;
              nn_layer_output, nn_layer_input_grad; batcher augmentation
              (nn_set_augment: flip, padded random crop); the model file's new layer
              keys (docs/FORMAT.md); the model tool nn (tools/nn.c). Incompatible:
              nn_layer_desc's kernel, stride, pad and alpha are per-axis and per-option
              fields (beta is Softplus's beta, threshold its threshold), nn_layer keeps
              no buffers or flags (the accessors read the activations)
       0.2.0  nothing hidden, nothing crashes: NaN and infinity as in PyTorch, divergence
              caught before any update; every pointer checked (NULL is NN_ERR_ARG),
              calls out of order NN_ERR_STATE; nn_backward, nn_optim_step, the setters
              and the preprocessing functions return a status; model files checked
              before anything is allocated (NN_MAX_BUILD_BYTES), all-or-nothing loads,
              byte-identical round trips, atomic saves; nn_load_checkpoint_memory,
              nn_set_check_input, nn_dataset.owns_data
       0.1.0  first release: tensors, GEMM, layers, optimisers, CIFAR-10, IDX

   License: MIT or public domain, your choice; see the end of this file.
*/
#ifndef NN_H
#define NN_H

#define NN_VERSION_MAJOR 0
#define NN_VERSION_MINOR 5
#define NN_VERSION_PATCH 0

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifndef NNDEF
#ifdef NN_STATIC
#if defined(__GNUC__) || defined(__clang__)
#define NNDEF static __attribute__((unused))   /* no warning for what a file leaves unused */
#else
#define NNDEF static
#endif
#else
#define NNDEF extern
#endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* =================================================================================
   PUBLIC API
   ================================================================================= */

/* ---- Errors --------------------------------------------------------------------- */

typedef enum nn_status {
    NN_OK = 0,
    NN_ERR_ARG,       /* a bad argument: wrong shape, out-of-range value, NULL */
    NN_ERR_NOMEM,     /* an allocation failed or a size overflowed */
    NN_ERR_IO,        /* a file could not be opened, read or written */
    NN_ERR_FORMAT,    /* a file is damaged or not of the expected format */
    NN_ERR_NUMERIC,   /* a value stopped being finite (NaN or infinity) */
    NN_ERR_STATE      /* a call out of order, e.g. a net used before nn_build */
} nn_status;

NNDEF const char *nn_error(void);                 /* the last error, as a sentence */
NNDEF const char *nn_status_name(nn_status s);   /* "NN_ERR_IO", ... */

/* ---- Random numbers --------------------------------------------------------------
   PCG32: the same sequence of integers and uniforms on every platform for a seed. */

typedef struct nn_rng { uint64_t state, inc; } nn_rng;

/* A NULL r gives 0 (and nn_error() says so); nn_rng_shuffle returns NN_ERR_ARG for a
   NULL r, a negative n or NULL items with n > 0, and leaves the items untouched. */
NNDEF nn_rng   nn_rng_new(uint64_t seed);
NNDEF uint32_t nn_rng_u32(nn_rng *r);
NNDEF uint32_t nn_rng_below(nn_rng *r, uint32_t n);     /* uniform in [0, n), unbiased */
NNDEF float    nn_rng_uniform(nn_rng *r);                /* uniform in [0, 1) */
NNDEF float    nn_rng_normal(nn_rng *r, float mean, float std);
NNDEF nn_status nn_rng_shuffle(nn_rng *r, int *items, int n);   /* Fisher-Yates */

/* ---- Shapes ----------------------------------------------------------------------
   Arrays are float32, row-major: a batch of images is N x C x H x W (NCHW). */

#define NN_MAX_DIMS 4         /* the most dimensions of a parameter (O x C x KH x KW) */

/* The shape of one sample: (c, h, w); a feature vector is (features, 1, 1). */
typedef struct nn_shape { int c, h, w; } nn_shape;

NNDEF nn_shape  nn_shape3(int c, int h, int w);
NNDEF nn_shape  nn_shape1(int features);
NNDEF size_t    nn_shape_size(nn_shape s);

/* ---- Kernels ---------------------------------------------------------------------
   Row-major C = alpha * op(A) * op(B) + beta * C, op(X) = X or X^T.
   op(A) is m x k, op(B) is k x n, C is m x n; lda/ldb/ldc are the row strides of the
   matrices as stored. When beta is 0, C is not read (it may hold NaN).
   These are the low-level kernels the layers run on; the checks are only those that
   cost nothing against the work. NN_ERR_ARG, with C untouched, for m, n or k < 0, a
   NULL c, a NULL a or b when it is read (k > 0 and alpha != 0; for nn_gemm_reference
   k > 0), or a row stride below
   its row's length (lda < k, or < m with trans_a; ldb < n, or < k with trans_b;
   ldc < n; each at least 1). m = 0 or n = 0 does nothing; k = 0 or alpha = 0 gives
   C = beta * C. The strides are not checked against the arrays' real sizes. */

NNDEF nn_status nn_gemm(int trans_a, int trans_b, int m, int n, int k, float alpha,
                        const float *a, int lda, const float *b, int ldb,
                        float beta, float *c, int ldc);
/* The portable scalar GEMM, the reference the fast paths are tested against (the
   same contract). */
NNDEF nn_status nn_gemm_reference(int trans_a, int trans_b, int m, int n, int k, float alpha,
                                  const float *a, int lda, const float *b, int ldb,
                                  float beta, float *c, int ldc);
NNDEF const char *nn_simd_name(void);   /* "avx512f", "avx2+fma", "neon" or "scalar" */
/* Threads for GEMM and the layers: 0 means the NN_THREADS variable, else the online
   cores; more than 64 is taken as 64; negative is NN_ERR_ARG (nothing changes).
   With NN_NO_THREADS it is always 1. */
NNDEF nn_status nn_set_threads(int n);
NNDEF int  nn_get_threads(void);

/* im2col: one image (channels x height x width) to a matrix with
   channels*kernel_h*kernel_w rows and out_h*out_w columns, row stride ld_col, where
   out_h = (height + 2*pad_h - kernel_h) / stride_h + 1 (likewise out_w). Padding reads
   as 0. col2im is its adjoint: it ADDS each column entry back into the image.
   NN_ERR_ARG, with nothing written, for a NULL img or col, channels, sizes, kernel or
   stride < 1, padding < 0, a kernel larger than the padded image, ld_col < out_h*out_w,
   or sizes whose products overflow an int. */
NNDEF nn_status nn_im2col(const float *img, int channels, int height, int width,
                          int kernel_h, int kernel_w, int stride_h, int stride_w,
                          int pad_h, int pad_w, float *col, int ld_col);
NNDEF nn_status nn_col2im(const float *col, int ld_col, int channels, int height, int width,
                          int kernel_h, int kernel_w, int stride_h, int stride_w,
                          int pad_h, int pad_w, float *img);

/* ---- Layers ----------------------------------------------------------------------
   A layer is described by value (nn_linear(100), nn_conv2d(64, 3, 1, 1), ...) and
   added to a net; the net infers its input shape when it is built.
   NaN and infinity come out of every layer's forward and backward where PyTorch 1.13's
   CPU layers put them (tests/nan_torch.py compares each): ReLU keeps a NaN and passes
   its gradient (so does BatchNorm's fused ReLU); LeakyReLU gives a NaN the slope's
   gradient; MaxPool2d lets a NaN beat any number and gives the gradient to the last NaN
   of a window; in training BatchNorm spreads a NaN or infinity over its whole channel
   and into the running statistics; Linear and Conv2d propagate them as sums do (a
   Conv2d batch holding one goes through im2col, not Winograd, whose transforms would
   turn an infinity into NaN); Dropout keeps a dropped NaN (NaN x 0); Hardtanh keeps a NaN
   and gives it the gradient 0 (as PyTorch's vectorised loop). Differences: for -0,
   ReLU gives +0 and the exact GELU -0 where PyTorch has the other zero (the same value),
   and Softplus's gradient stays finite where a threshold above 88 lets PyTorch's
   overflow to NaN. */

typedef enum nn_layer_kind {
    NN_LINEAR = 1, NN_CONV2D, NN_MAXPOOL2D, NN_AVGPOOL2D, NN_GLOBAL_AVGPOOL,
    NN_BATCHNORM, NN_RELU, NN_LEAKY_RELU, NN_SIGMOID, NN_TANH, NN_GELU, NN_SOFTPLUS,
    NN_SCALE, NN_DROPOUT, NN_FLATTEN,
    NN_HARDTANH,                     /* clamp to [min_val, max_val]; ReLU6 is (0, 6) */
    NN_BLOCK, NN_SHORTCUT, NN_BLOCK_END,   /* the marks of a residual block (below) */
    NN_LAYER_KIND_COUNT
} nn_layer_kind;

/* A layer's options, each field meaning one thing; zero means PyTorch's default where
   PyTorch has one (written beside the field), so a zeroed desc with a kind and the
   sizes is a layer as PyTorch builds it by default. */
typedef struct nn_layer_desc {
    nn_layer_kind kind;
    const char *name;         /* prefix of the parameter names, "layer1.0.conv1" gives
                                 "layer1.0.conv1.weight"; NULL: the layer's index, as in
                                 nn.Sequential. nn_add copies it: 1 to NN_MAX_NAME - 21
                                 bytes (room for ".num_batches_tracked") of letters,
                                 digits, '_', '-' and '.', not beginning
                                 "optimizer.m." or "optimizer.v." */
    int   out;                /* Linear: out features; Conv2d: out channels */
    int   kernel_h, kernel_w; /* Conv2d, MaxPool2d, AvgPool2d */
    int   stride_h, stride_w; /* 0: 1 for Conv2d, the kernel for the pools */
    int   pad_h, pad_w;       /* zero padding on each side (pools: implicit -inf / 0) */
    int   dilation_h, dilation_w;   /* Conv2d; 0: 1 */
    int   groups;             /* Conv2d; 0: 1; groups = in channels is depthwise */
    int   no_bias;            /* Linear, Conv2d: 1 = bias=False */
    int   ceil_mode;          /* MaxPool2d, AvgPool2d: 1 = ceil_mode=True */
    int   exclude_pad;        /* AvgPool2d: 1 = count_include_pad=False */
    int   no_affine;          /* BatchNorm: 1 = affine=False (no weight, no bias) */
    int   approximate;        /* GELU: 1 = the tanh approximation */
    int   relu;               /* NN_BLOCK_END: 1 = ReLU after the sum */
    float negative_slope;     /* LeakyReLU (0 is a slope of 0, not PyTorch's 0.01) */
    float factor;             /* Scale: y = factor x */
    float p;                  /* Dropout: the probability of a zero */
    float beta, threshold;    /* Softplus; 0: 1 and 20 */
    float min_val, max_val;   /* Hardtanh; both 0: -1 and 1 */
    float momentum, eps;      /* BatchNorm; 0: 0.1 and 1e-5 */
} nn_layer_desc;

#define NN_MAX_NAME 64        /* bytes of a parameter name, the terminating NUL included */

NNDEF const char   *nn_layer_name(nn_layer_kind kind);   /* "Linear", "Conv2d", ... */
NNDEF nn_layer_desc nn_linear(int out_features);
/* Square kernel, stride and padding; set the _h/_w fields, dilation or groups of the
   desc for the rest (groups = out = in channels: depthwise). */
NNDEF nn_layer_desc nn_conv2d(int out_channels, int kernel, int stride, int pad);
NNDEF nn_layer_desc nn_maxpool2d(int kernel, int stride, int pad);
NNDEF nn_layer_desc nn_avgpool2d(int kernel, int stride, int pad);
NNDEF nn_layer_desc nn_global_avgpool(void);
NNDEF nn_layer_desc nn_batchnorm(void);     /* 1d on features, 2d on channels */
NNDEF nn_layer_desc nn_relu(void);
NNDEF nn_layer_desc nn_relu6(void);         /* Hardtanh(0, 6) */
NNDEF nn_layer_desc nn_hardtanh(float min_val, float max_val);
NNDEF nn_layer_desc nn_leaky_relu(float negative_slope);
NNDEF nn_layer_desc nn_sigmoid(void);
NNDEF nn_layer_desc nn_tanh(void);
NNDEF nn_layer_desc nn_gelu(int tanh_approximation);
NNDEF nn_layer_desc nn_softplus(float beta, float threshold);
NNDEF nn_layer_desc nn_scale(float factor);
NNDEF nn_layer_desc nn_dropout(float p);
NNDEF nn_layer_desc nn_flatten(void);
/* A residual block, y = main(x) + shortcut(x), then a ReLU if asked:
       nn_add(net, nn_block());            the block's input x
       nn_add(net, nn_conv2d(...)); ...    the main path
       nn_add(net, nn_shortcut());         optional: the layers up to the end are the
       nn_add(net, nn_conv2d(...)); ...    shortcut path, also from x (none: identity)
       nn_add(net, nn_block_end(1));       the sum (1: ReLU after it)
   Both paths must end in the same shape. Blocks may nest inside either path. The
   marks hold no parameters and take a layer index (so the default names of the
   layers after them count them). */
NNDEF nn_layer_desc nn_block(void);
NNDEF nn_layer_desc nn_shortcut(void);
NNDEF nn_layer_desc nn_block_end(int relu);
/* The same desc with its parameter-name prefix set (copied by nn_add). */
NNDEF nn_layer_desc nn_named(nn_layer_desc layer, const char *name);

/* How the optimiser treats one learnable parameter (PyTorch's param_groups, per
   tensor); a zeroed struct is the default. Set with nn_set_param_options. */
typedef struct nn_param_options {
    float lr_scale;   /* the optimiser's learning rate times this; 0: 1 */
    float wd_scale;   /* its weight decay times this; 0: 1 (no_decay for none) */
    int   no_decay;   /* 1: no weight decay */
    int   frozen;     /* 1: not trained: no update, the optimiser's state and the
                         parameter's step count stay as they are, its gradient is not
                         computed (grad keeps its old values) */
} nn_param_options;

/* A learnable tensor with its gradient, or a buffer (running statistics). Names are
   PyTorch's state_dict keys of the equivalent nn.Sequential ("0.weight", ...). */
typedef struct nn_param {
    char   name[NN_MAX_NAME];
    float *value;
    float *grad;           /* NULL for buffers */
    int    learnable;      /* 0 for buffers */
    int    ndim;
    int    shape[NN_MAX_DIMS];
    size_t size;
    nn_param_options options;   /* zero (the default) after nn_build; for buffers always zero */
} nn_param;

/* A layer of a net, read-only (nn_get_layer returns a const pointer; the parameters'
   values and gradients may be written through weight and bias); its activations are
   read with nn_layer_output and nn_layer_input_grad. */
typedef struct nn_layer {
    nn_layer_desc desc;              /* as added; desc.name points to name (or is NULL) */
    char      name[NN_MAX_NAME];     /* the parameter-name prefix; "" for the index */
    nn_shape  in, out;               /* per-sample shapes */
    nn_param *weight, *bias;         /* NULL where the layer has none */
    nn_param *running_mean, *running_var;
} nn_layer;

/* ---- Losses ----------------------------------------------------------------------
   Each returns the loss averaged over the batch (or summed where said) and, if grad
   is not NULL, writes dLoss/dInput there. A NULL input or target, or nothing to
   average over (n, count or classes < 1), returns NaN with nn_error() set. NaN and infinity land in the loss and in
   each gradient element as in PyTorch 1.13: a NaN or +inf logit makes its row NaN in
   the cross-entropies, a -inf one has probability 0; a soft-target row with a NaN or
   infinite target gets PyTorch's gradient (softmax sum(t) - t) / n; nn_bce on a
   probability outside [0, 1] or NaN (PyTorch raises) returns NaN, writes NaN to its
   gradient and sets nn_error(); nn_bce_with_logits at z = +inf is +inf (NaN for t = 1),
   at -inf NaN. */

NNDEF float nn_softmax_cross_entropy(const float *logits, const int *labels, int n,
                                     int classes, float *grad);
NNDEF float nn_softmax_cross_entropy_soft(const float *logits, const float *targets,
                                          int n, int classes, float *grad);
/* Cross-entropy with label smoothing, PyTorch's CrossEntropyLoss(label_smoothing=eps):
   the target of sample i is (1 - eps) onehot(label_i) + eps / K over the K classes, so
       loss_i = (1 - eps) (lse_i - z_i[label_i]) + eps/K sum_c (lse_i - z_ic),
       dLoss/dz = (softmax(z) - (1 - eps) onehot - eps/K) / n.
   eps must lie in [0, 1] (else NaN, NN_ERR_ARG); eps 0 gives nn_softmax_cross_entropy's
   bits. A -inf logit makes the loss +inf for eps > 0 (as in PyTorch). */
NNDEF float nn_softmax_cross_entropy_smooth(const float *logits, const int *labels, int n,
                                            int classes, float smoothing, float *grad);
NNDEF float nn_mse(const float *pred, const float *target, size_t count, int sum,
                   float *grad);
NNDEF float nn_bce(const float *prob, const float *target, size_t count, float *grad);
NNDEF float nn_bce_with_logits(const float *logits, const float *target, size_t count,
                               float *grad);

/* ---- Networks --------------------------------------------------------------------- */

typedef struct nn_net nn_net;

typedef enum nn_init { NN_INIT_DEFAULT = 0, NN_INIT_NORMAL, NN_INIT_CONSTANT } nn_init;

/* A net and everything it holds (layers, parameters, buffers, the outputs nn_forward
   returns) belong to it: nn_net_free releases them all (NULL is a no-op); never free()
   a pointer the net hands out. The net must not be used after nn_net_free. */
NNDEF nn_net   *nn_net_new(nn_shape input);
NNDEF void      nn_net_free(nn_net *net);
/* Appends a layer; NN_ERR_STATE once the net is built. NN_ERR_ARG for a negative
   size, a flag other than 0 or 1, a number that is not finite or a name that is
   empty, too long, holds another character (what a model file cannot hold) or begins
   as a checkpoint's optimiser keys (see nn_layer_desc.name), or an option set on a
   kind that does not have it (groups on a Linear, p on a ReLU, ...); the
   rest of a layer's options are checked by nn_build (also: block marks that do not
   pair up, a block whose paths end in different shapes, two parameters with one
   name). */
NNDEF nn_status nn_add(nn_net *net, nn_layer_desc layer);
/* Infers every shape, allocates every buffer for up to max_batch samples and
   initialises the parameters as PyTorch does by default, seeded. Building again
   re-initialises the net and forgets the last forward. */
NNDEF nn_status nn_build(nn_net *net, int max_batch, uint64_t seed);
/* Re-initialise weights from N(mean, std) (NN_INIT_NORMAL) or to a constant, biases
   to bias_value, or both as PyTorch's default (NN_INIT_DEFAULT; the other arguments
   are then ignored); layers of the given kind only (0: Linear and Conv2d).
   NN_ERR_STATE before nn_build; NN_ERR_ARG (nothing changed) for an unknown how or
   kind, or, for NN_INIT_NORMAL / NN_INIT_CONSTANT, a value or bias that is not finite
   or an std that is negative or not finite. */
NNDEF nn_status nn_init_weights(nn_net *net, nn_init how, float mean_or_value, float std,
                                float bias_value, nn_layer_kind only);
/* Training (any non-zero value, the default) or evaluation mode (0) for BatchNorm and
   Dropout; NN_ERR_STATE before nn_build (which sets training mode). */
NNDEF nn_status nn_set_training(nn_net *net, int training);
/* Getters. A NULL net gives 0 (a zero shape, NULL) and sets nn_error(); so does an
   index out of range. nn_output_shape is the zero shape and nn_max_batch 0 until the
   net is built. The layer and parameter structs are the net's: read them, write the
   parameter values and gradients, never free them; nn_build makes them anew (and
   nn_inference_only drops the gradients and the layers' buffers), so fetch them again
   after either. */
NNDEF int       nn_num_layers(const nn_net *net);
NNDEF const nn_layer *nn_get_layer(const nn_net *net, int i);
NNDEF int       nn_num_param_tensors(const nn_net *net);   /* includes buffers */
NNDEF nn_param *nn_get_param(nn_net *net, int i);
NNDEF size_t    nn_num_param_scalars(const nn_net *net);  /* learnable scalars */
NNDEF nn_shape  nn_input_shape(const nn_net *net);   /* per sample, as given to nn_net_new */
NNDEF nn_shape  nn_output_shape(const nn_net *net);
NNDEF int       nn_max_batch(const nn_net *net);
/* Sets the options (nn_param_options) of every learnable parameter of a built net
   whose name is `name` or begins with `name` followed by '.' ("3" sets 3.weight and
   3.bias, "layer1" everything in layer1; "" every learnable parameter), replacing
   their previous options; read them back in nn_get_param(net, i)->options.
   nn_build resets them all to the default; checkpoints keep them. The optimisers
   apply them on every step: lr x lr_scale; weight decay x wd_scale (0 with no_decay;
   for AdamW the decoupled decay is lr x lr_scale x wd x wd_scale); a frozen
   parameter is skipped. nn_backward then computes no weight gradient for a frozen
   Linear or Conv2d weight (outside the Winograd path) and skips every layer below the
   lowest one with a parameter to train (unless nn_set_input_grad asked for the input
   gradient): their input gradients are not computed. NN_ERR_ARG for a NULL net or
   name, a scale that is negative or not finite, a flag other than 0 or 1, or a name
   that matches no learnable parameter; NN_ERR_STATE before nn_build. */
NNDEF nn_status nn_set_param_options(nn_net *net, const char *name, nn_param_options o);
/* Forward n <= max_batch samples; returns the output (n x output size), owned by net
   and valid until its next nn_forward, nn_build or nn_inference_only. NULL (nn_error()
   set) for a NULL net or x, n outside 1..max_batch, or a net that is not built
   (NN_ERR_STATE). */
NNDEF const float *nn_forward(nn_net *net, const float *x, int n);
/* Backward from dLoss/dOutput (n x output size for the n of the last forward); fills
   every grad. NN_ERR_ARG for a NULL net or dy; NN_ERR_STATE for a net that is not
   built, is inference-only, or has had no nn_forward since it was last built. The x
   of that forward must still be valid. */
NNDEF nn_status nn_backward(nn_net *net, const float *dy);
/* Zeroes every gradient; NN_ERR_STATE for a net that is not built or is
   inference-only (it has no gradients). */
NNDEF nn_status nn_zero_grad(nn_net *net);
/* Ask before nn_build for dLoss/dInput to be computed by nn_backward (off by default:
   the first layer then skips that work): on a built net only re-asking for what it
   was built with is accepted, a change is NN_ERR_STATE (set it, then nn_build).
   nn_input_grad() returns the one of the last nn_backward, n x input size (a later
   nn_forward leaves it as it is); before the first nn_backward of a build, on an
   inference-only net or when not asked for, NULL with nn_error() set (NN_ERR_STATE). */
NNDEF nn_status nn_set_input_grad(nn_net *net, int enable);
NNDEF const float *nn_input_grad(const nn_net *net);
/* The activations of layer i, read-only and the net's: its output in the last
   nn_forward (n x out, n of that forward; a view's output is its input, a BatchNorm
   followed by a ReLU gives the ReLU's output, which it computes), and the gradient
   for its input in the last nn_backward (n x in). NULL with nn_error() set for a NULL
   net or an index out of range (NN_ERR_ARG), and with NN_ERR_STATE for a net that is
   not built, before the first nn_forward (nn_backward) of a build, and where it is
   not kept: an inference-only net keeps only the last layer's output and no
   gradients; no input gradient is computed for a layer below which nothing has
   parameters (unless nn_set_input_grad asked), for a ReLU fused into the BatchNorm
   before it, or for NN_SHORTCUT. */
NNDEF const float *nn_layer_output(const nn_net *net, int i);
NNDEF const float *nn_layer_input_grad(const nn_net *net, int i);
/* Keeps only what nn_forward needs, for a built (or loaded) net that will not be
   trained again: frees the gradients and every layer's stored output and input
   gradient, and plans the layers' outputs again by their lifetimes (an output lives
   from the layer that writes it to its last reader, a block's input to the block's
   end) in a few shared buffers, with one shared workspace. Parameters, running statistics and the training flag are kept.
   Afterwards nn_backward, nn_train_step and the optimisers fail with NN_ERR_STATE;
   nn_build makes it trainable again (and re-initialises it). NN_ERR_ARG for a NULL
   net, NN_ERR_STATE for one that is not built. */
NNDEF nn_status nn_inference_only(nn_net *net);

/* ---- Optimisers ------------------------------------------------------------------
   Parameter structs where zero means PyTorch's default (lr has no default for SGD). */

typedef struct nn_optim nn_optim;

typedef struct nn_sgd_desc {
    float lr, momentum, dampening, weight_decay;
    int   nesterov;
} nn_sgd_desc;

typedef struct nn_adam_desc {
    float lr;             /* 0: 1e-3 (Adamax: 2e-3) */
    float beta1, beta2;   /* 0: 0.9, 0.999 */
    float eps;            /* 0: 1e-8 */
    float weight_decay;   /* Adam/Adamax: L2 added to the gradient; AdamW: decoupled
                             (0 means 0 for Adam, 1e-2 for AdamW as PyTorch) */
} nn_adam_desc;

NNDEF nn_optim *nn_sgd(nn_net *net, nn_sgd_desc desc);
NNDEF nn_optim *nn_adam(nn_net *net, nn_adam_desc desc);
NNDEF nn_optim *nn_adamw(nn_net *net, nn_adam_desc desc);
NNDEF nn_optim *nn_adamax(nn_net *net, nn_adam_desc desc);
NNDEF void      nn_optim_free(nn_optim *opt);          /* NULL: nothing */
/* One update from the gradients. Every new value is computed and checked first: if a
   gradient is NaN or infinite, or an updated parameter or second moment would not be
   finite (overflow), it returns NN_ERR_NUMERIC naming the step, the parameter and the
   index, and the parameters, moments and step count are as before. NN_ERR_STATE if
   the net was rebuilt (nn_build) after the optimiser was made, or is inference-only. */
NNDEF nn_status nn_optim_step(nn_optim *opt);
/* lr must be finite and >= 0 (0 freezes the parameters), else NN_ERR_ARG. */
NNDEF nn_status nn_optim_set_lr(nn_optim *opt, float lr);
NNDEF float     nn_optim_get_lr(const nn_optim *opt);  /* NaN for NULL */
NNDEF long      nn_optim_steps(const nn_optim *opt);   /* updates done so far; 0 for NULL */

/* Learning-rate schedules: pure functions of the step (the number of updates done so
   far), fed to nn_optim_set_lr before each update:
       nn_optim_set_lr(opt, nn_lr_cosine(base_lr, nn_optim_steps(opt), total_steps, 0));
       nn_train_step(net, opt, x, y, n);
   Step decay (PyTorch's StepLR): base_lr * gamma^floor(step / step_size).
   Cosine annealing (PyTorch's CosineAnnealingLR, closed form):
       min_lr + (base_lr - min_lr) (1 + cos(pi step / total_steps)) / 2,
   held at min_lr from step total_steps on (PyTorch's formula would rise again).
   A negative step counts as 0; step_size <= 0 or total_steps <= 0 turns the schedule
   off: base_lr is returned unchanged. */
NNDEF float     nn_lr_step_decay(float base_lr, long step, long step_size, float gamma);
NNDEF float     nn_lr_cosine(float base_lr, long step, long total_steps, float min_lr);
/* Triangular (airbench's one-cycle-like) schedule: with w = floor(total_steps *
   warmup_frac) warm-up steps, the rate rises linearly from start_factor x base_lr at
   step 0 to base_lr at step w, then falls linearly to end_factor x base_lr at step
   total_steps and stays there:
       step < w:  base_lr (start_factor (1 - f) + f),          f = step / w
       else:      base_lr ((1 - f) + end_factor f),            f = (step - w) / (total_steps - w)
   (airbench94: warmup_frac 0.23, start_factor 0.2, end_factor 0.07). A negative step
   counts as 0; total_steps <= 0 or a warmup_frac outside [0, 1] returns base_lr. */
NNDEF float     nn_lr_triangular(float base_lr, long step, long total_steps, float warmup_frac,
                                 float start_factor, float end_factor);

/* Forward, softmax cross-entropy over integer labels, backward, update. Returns the
   mean loss, or NaN with nn_error() set: NN_ERR_ARG (NULL, n outside 1..max batch, a
   label outside the classes), NN_ERR_STATE (as nn_optim_step), NN_ERR_NUMERIC when the
   loss is not finite (the message names the first layer whose output holds a NaN or
   infinity) or the update is not (as nn_optim_step). After NN_ERR_NUMERIC the
   parameters, running statistics, optimiser and dropout RNG are as before the call. */
NNDEF float     nn_train_step(nn_net *net, nn_optim *opt, const float *x, const int *y,
                              int n);
/* How many of the n samples of the last forward (nn_forward, nn_train_step or the
   last batch of nn_evaluate) the net got right: those whose largest output (the first
   on ties, as nn_argmax) is their label; the logits are nn_layer_output(net, last).
   Training accuracy without knowing the class count:
       float loss = nn_train_step(net, opt, x, y, n);
       correct += nn_batch_correct(net, y, n);
   -1 with nn_error() set: NN_ERR_ARG for a NULL net or labels, or an n other than that
   forward's; NN_ERR_STATE for a net that is not built, has had no forward since it was
   built, or is quantized. A label outside the classes counts as wrong. */
NNDEF int       nn_batch_correct(const nn_net *net, const int *labels, int n);
/* Off by default: when on, nn_train_step and nn_evaluate first check their input
   batch and fail with NN_ERR_NUMERIC at a NaN or infinity (one pass over the batch). */
NNDEF nn_status nn_set_check_input(nn_net *net, int enable);
/* Label smoothing eps in [0, 1] for nn_train_step's cross-entropy (0, the default:
   none), as nn_softmax_cross_entropy_smooth; nn_evaluate's loss stays the plain
   cross-entropy. Kept in checkpoints, not in model files. NN_ERR_ARG for a NULL net
   or an eps outside [0, 1] (nothing changed). */
NNDEF nn_status nn_set_label_smoothing(nn_net *net, float eps);

/* Weight averaging: an exponential moving average of a built net's parameters and
   buffers (running statistics; not num_batches_tracked), kept beside the net.
       nn_ema *avg = nn_ema_new(net);        a copy of the values now
       nn_ema_update(avg, decay);            avg = decay avg + (1 - decay) net
       nn_ema_apply(avg);                    net = avg (Lookahead: update, then apply)
       nn_ema_swap(avg);                     exchange them (evaluate the average,
                                             swap back, train on)
   The update is PyTorch's avg.lerp_(net, 1 - decay) element by element, bit for bit:
   with w = 1 - decay, avg + w (net - avg) for w < 0.5, else net - (net - avg)(1 - w),
   each a fused multiply-add (fmaf) as in PyTorch's CPU kernel.
   airbench94's Lookahead is, every 5 steps, update with decay 0.95^5 (step/total)^3
   then apply, and at the end update with decay 1 and apply. nn_ema_new gives NULL for
   a NULL or unbuilt net (NN_ERR_STATE) or without memory; the others NN_ERR_ARG for a
   NULL e or a decay outside [0, 1], NN_ERR_STATE once the net was rebuilt (nn_build).
   Free the average before its net (a stale one may be freed any time before the
   net). */
typedef struct nn_ema nn_ema;
NNDEF nn_ema   *nn_ema_new(nn_net *net);
NNDEF nn_status nn_ema_update(nn_ema *e, float decay);
NNDEF nn_status nn_ema_apply(nn_ema *e);
NNDEF nn_status nn_ema_swap(nn_ema *e);
NNDEF void      nn_ema_free(nn_ema *e);                /* NULL: nothing */

/* ---- Training across processes (data parallel) -----------------------------------
   nn.h links no communication library: the program hands it a function that sums a
   buffer in place across its processes (with MPI one MPI_Allreduce(MPI_IN_PLACE, buffer,
   count, MPI_FLOAT, MPI_SUM, comm)) and returns 0, or anything else on failure. Every
   process must make the same calls in the same order with the same counts. */
typedef int (*nn_allreduce_fn)(float *buffer, size_t count, void *ctx);
/* From now on nn_train_step and nn_optim_step sum the gradients across the world_size
   processes through sum(buffer, count, ctx) after backward and divide them by
   world_size before the update, so that every process applies the same update: the
   gradients go in reverse parameter order (the last layer's first), tensors of fewer
   than 2^20 values (4 MB) packed into buckets of up to 2^20, a larger one by itself,
   in place, all after the whole backward (no overlap with it). A hook that fails makes the step NN_ERR_IO naming the hook and the bucket,
   with the parameters as before; the processes are then out of step (stop them all).
   sum NULL turns it off (world_size is then ignored). BatchNorm's running statistics
   are averaged with the gradients (so they too stay equal everywhere; the running mean
   is then exactly the global batch's), unless nn_set_sync_batchnorm makes BatchNorm
   sum its statistics through the hook. NN_ERR_ARG for a NULL net or world_size < 1;
   NN_ERR_NOMEM if the bucket (min(2^20, the net's parameter values) floats, allocated
   here) cannot be allocated. */
NNDEF nn_status nn_set_allreduce(nn_net *net, nn_allreduce_fn sum, void *ctx, int world_size);
/* Off by default (each process normalises by its own part of the batch, as PyTorch's
   DistributedDataParallel). On: every BatchNorm in training mode takes its statistics
   over the whole global batch (PyTorch's SyncBatchNorm): the forward sums each
   channel's values and count, then its squared deviations from the global mean, and the
   backward sum(dy) and sum(dy xhat), each through the hook (three calls, of C + 1, C
   and 2C values, per layer and step), which gives one process's result on the global batch
   within float rounding. It needs nn_set_allreduce; a failing hook makes nn_forward
   NULL and nn_train_step NaN, with NN_ERR_IO. NN_ERR_ARG for a NULL net. */
NNDEF nn_status nn_set_sync_batchnorm(nn_net *net, int enable);
/* The part of n items that process rank of world_size gets: returns its count and sets
   *first (may be NULL) to its first index. Contiguous, in rank order, the first
   n % world_size ranks one more; 0 for an invalid rank or world_size. Used by the
   batcher's sharding and to split a test set for nn_evaluate. */
NNDEF int       nn_shard(int n, int rank, int world_size, int *first);

/* ---- Data ------------------------------------------------------------------------
   A labelled data set in memory, float pixels N x C x H x W, plus a batcher that walks
   it in a shuffled order and reshuffles at the end of every epoch.
   The loaders overwrite *out without freeing it: free a loaded set with
   nn_dataset_free before loading into it again. On failure *out is left zeroed.
   A set may also be filled by the program: zero the struct (nn_dataset d = {0}), then
   set n, shape, num_classes, x and y to its own arrays; those stay the program's
   (owns_data stays 0) and nn_dataset_free releases only what nn.h allocated for it
   (the batcher's order). Every function below returns NN_ERR_ARG for a NULL set, an
   empty one (n <= 0 or a zero shape), or a NULL x (or y where labels are read). */

/* Data augmentation applied by nn_next_batch to the samples it copies (the set's own
   pixels never change); zero = none. Per sample, in this order (torchvision's
   RandomCrop(H, padding=P) then RandomHorizontalFlip()):
   crop_pad P > 0: the image is padded with P zeros on each side and an H x W window is
                   cut at a uniformly drawn offset (0..2P rows, 0..2P columns), so the
                   image moves by up to P pixels and the uncovered border is 0;
                   with reflect 1 the padding mirrors the image without repeating
                   its edge (numpy's and F.pad's 'reflect': row -1 is row 1, row H is
                   row H-2), airbench94's random translation;
   flip 1:         the image is mirrored left-right with probability 0.5;
   flip 2:         alternating flip (airbench94): each image gets one fair coin per
                   batcher seed, drawn from the seed and its index, and is mirrored in
                   the epochs where coin + epoch is odd, i.e. on every other epoch
                   (epoch = the batcher's completed epochs when the sample is copied).
                   It draws nothing from the augmentation stream, so crop offsets are
                   those of flip 0. */
typedef struct nn_augment {
    int flip;             /* 0: none, 1: random horizontal flip, p = 0.5, 2: alternating */
    int crop_pad;         /* 0: none, P > 0: padded random crop, P < min(h, w) */
    int reflect;          /* crop_pad's padding: 0: zeros, 1: reflection */
} nn_augment;

typedef struct nn_dataset {
    int    n;             /* samples */
    nn_shape shape;       /* of one sample */
    int    num_classes;
    float *x;             /* n * nn_shape_size(shape) */
    int   *y;             /* n labels in [0, num_classes) */
    /* batcher state */
    int   *order;         /* NULL until nn_batch_start; nn.h's (nn_dataset_free) */
    int    cursor;        /* next position in order */
    int    epoch;         /* completed epochs */
    nn_rng rng;
    int    owns_data;     /* 1: x and y were allocated by a loader and nn_dataset_free
                             frees them; 0: they are the program's */
    nn_augment augment;   /* set by nn_set_augment; zero: none */
    nn_rng aug_rng;       /* augmentation draws; seeded by nn_batch_start */
    uint64_t aug_seed;    /* nn_batch_start's seed: alternating flip's coins */
    int    shard_rank, shard_world;   /* nn_batch_shard; world 0 or 1: not sharded */
} nn_dataset;

#define NN_CIFAR10_RECORD 3073   /* 1 label byte + 3 x 32 x 32 pixel bytes */

#ifndef NN_NO_STDIO   /* the file readers */
/* CIFAR-10 binary batch files, concatenated in the given order. Each file must be a
   non-zero multiple of 3073 bytes with every label byte < 10. Pixels become floats
   0..255, layout N x 3 x 32 x 32 (R, G, B planes); num_classes is 10. */
NNDEF nn_status nn_cifar10_load_files(const char *const *paths, int count, nn_dataset *out);
/* dir/data_batch_1..5.bin into train, dir/test_batch.bin into test (either may be
   NULL, not both, and not the same set). If either fails, both are left zeroed. */
NNDEF nn_status nn_cifar10_load(const char *dir, nn_dataset *train, nn_dataset *test);
/* MNIST-style IDX files (uncompressed): images u8 [n, rows, cols] (magic 0x00000803),
   labels u8 [n] (magic 0x00000801). Sizes must match the headers exactly. Pixels
   become floats 0..255, shape (1, rows, cols); num_classes is the largest label + 1. */
NNDEF nn_status nn_idx_load(const char *images_path, const char *labels_path, nn_dataset *out);
#endif
/* Frees the batcher order, and the pixels and labels if the set owns them (a loaded
   set: owns_data), then zeroes *d; NULL is a no-op. Never free() a loaded set's x or
   y yourself: they come from nn.h's aligned allocator. */
NNDEF void      nn_dataset_free(nn_dataset *d);

/* Per-pixel mean over all samples (shape-sized output), summed in double. */
NNDEF nn_status nn_mean_image(const nn_dataset *d, float *mean);
/* x -= mean (shape-sized); NN_ERR_ARG, nothing changed, if a mean is not finite. */
NNDEF nn_status nn_subtract_image(nn_dataset *d, const float *mean);
/* Per-channel mean and population standard deviation (shape.c values each); a
   channel whose values are all equal gets std 0. */
NNDEF nn_status nn_channel_stats(const nn_dataset *d, float *mean, float *std);
/* x = (x - mean[c]) / std[c]; a channel whose std is 0 is only shifted (a constant
   channel, as nn_channel_stats reports it). NN_ERR_ARG, nothing changed, for a mean
   that is not finite or an std that is negative or not finite. */
NNDEF nn_status nn_normalize_channels(nn_dataset *d, const float *mean, const float *std);
/* x *= factor; NN_ERR_ARG, nothing changed, for a factor that is not finite. */
NNDEF nn_status nn_scale_pixels(nn_dataset *d, float factor);

/* Starts the batcher: order = 0..n-1 shuffled by Fisher-Yates with nn_rng_new(seed)
   (so the first epoch is shuffled too), cursor 0, epoch 0. May be called again to
   restart. The only call of the batcher that allocates: nn_dataset_free releases
   the order (the set's own x and y only if it owns them). */
NNDEF nn_status nn_batch_start(nn_dataset *d, uint64_t seed);
/* Copies the next n samples into x (n * shape size floats) and their labels into y
   (either may be NULL). When the order is used up, the same generator reshuffles it,
   epoch is incremented and the batch continues from the start of the new order, so a
   batch may straddle two epochs. Without nn_batch_start the samples are walked in
   stored order 0..n-1, epoch after epoch, unshuffled. Never allocates. NN_ERR_ARG,
   nothing copied, for n <= 0, a cursor outside 0..d->n-1 or an augment that
   nn_set_augment would refuse (batcher fields not zeroed). */
NNDEF nn_status nn_next_batch(nn_dataset *d, int n, float *x, int *y);
/* Shards the batcher: from now on nn_next_batch(d, n, x, y) takes n as the GLOBAL
   batch and walks the order (and the augmentation draws) exactly as one process would,
   but copies into x and y only this rank's part, nn_shard(n, rank, world_size, NULL)
   samples, those at positions [first, first + count) of the global batch. With the
   same nn_batch_start seed on every process the shards are disjoint, their union is
   the single process's batch and every sample gets the single process's augmentation.
   n must then be >= world_size (NN_ERR_ARG). world_size 1 (rank 0) ends sharding.
   With n not a multiple of world_size the shards differ by one sample, and the mean
   of the processes' mean gradients weights a smaller shard's samples a little more
   than one process would (as DDP); a multiple gives one process's update exactly.
   NN_ERR_ARG for a NULL set, world_size < 1 or a rank outside 0..world_size-1. */
NNDEF nn_status nn_batch_shard(nn_dataset *d, int rank, int world_size);
/* Turns augmentation on (or off, with a zeroed a) for the batches nn_next_batch copies
   from now on. Its draws come from a generator of their own, seeded by nn_batch_start
   from the same seed (a set never started uses seed 0), so the same seed gives the same
   batches, and the shuffled order is the same with or without augmentation. The zero
   padding is 0 in the set's own values: pad before normalising (keep raw pixels in the
   set and normalise each batch, e.g. with nn_preprocess) to pad with black as
   torchvision does. NN_ERR_ARG, nothing changed, for a NULL or empty set, a flip
   other than 0, 1 or 2, a crop_pad < 0 or >= min(h, w), a reflect other than 0 or 1
   (1 without a crop_pad), or any augmentation of a set whose samples are not images
   (h or w of 1). */
NNDEF nn_status nn_set_augment(nn_dataset *d, nn_augment a);

/* ---- Model files -------------------------------------------------------------------
   safetensors: an 8-byte little-endian header length, a JSON header naming each tensor
   (PyTorch state_dict keys of the equivalent nn.Sequential, dtype F32, shape, byte
   offsets) with a "__metadata__" object that describes the architecture, the input
   preprocessing and the class names, then the raw little-endian data. PyTorch and other
   tools read these files; nn_load rebuilds the net from the metadata alone. */

typedef enum nn_preprocess_kind {
    NN_PREPROCESS_NONE = 0,
    NN_PREPROCESS_MEAN_IMAGE,     /* x = pixel * scale - mean[c][h][w] */
    NN_PREPROCESS_CHANNELS        /* x = (pixel * scale - mean[c]) / std[c] */
} nn_preprocess_kind;

/* Records how inputs are made from raw 0..255 pixels, so that a loaded model can be
   fed images (nn_preprocess). The values are copied. */
NNDEF nn_status nn_set_preprocess_mean_image(nn_net *net, const float *mean_image);
NNDEF nn_status nn_set_preprocess_channels(nn_net *net, float scale, const float *mean,
                                           const float *std);
NNDEF nn_preprocess_kind nn_get_preprocess(const nn_net *net);
/* pixels: n samples of raw values 0..255 in the net's input layout -> x. */
NNDEF nn_status nn_preprocess(const nn_net *net, const float *pixels, float *x, int n);
/* One name per output of a built net (count 0 clears them): non-empty UTF-8, no comma. */
NNDEF nn_status nn_set_class_names(nn_net *net, const char *const *names, int count);
NNDEF const char *nn_class_name(const nn_net *net, int i);   /* NULL if unknown */

/* A safetensors image of the net in memory; free it with nn_free_buffer. */
NNDEF nn_status nn_save_memory(nn_net *net, unsigned char **data, size_t *size);
NNDEF void      nn_free_buffer(void *data);
/* Rebuilds a net saved by nn_save, for batches of up to max_batch; NULL on error. The
   file may be untrusted: its tensors, shapes, numbers and the memory its buffers need
   (at most NN_MAX_BUILD_BYTES) are checked before anything is allocated. The net comes
   back in evaluation mode, ready for inference (nn_set_training(net, 1) to train it on);
   so does nn_load's. */
NNDEF nn_net   *nn_load_memory(const void *data, size_t size, int max_batch);
/* Loads weights into a net built by the program (names and shapes must match; the
   file's metadata is not needed: for files written by PyTorch). All or nothing: on
   failure the net is as it was. */
NNDEF nn_status nn_load_weights_memory(nn_net *net, const void *data, size_t size);
/* nn_load_checkpoint from a checkpoint image in memory. */
NNDEF nn_status nn_load_checkpoint_memory(nn_net *net, nn_optim *opt, const void *data, size_t size);
#ifndef NN_NO_STDIO
NNDEF nn_status nn_save(nn_net *net, const char *path);
NNDEF nn_net   *nn_load(const char *path, int max_batch);
NNDEF nn_status nn_load_weights(nn_net *net, const char *path);
/* Saves write "<path>.tmp" and rename it over path once it is complete, so that a
   crash or a full disk leaves the previous file whole.
   A checkpoint also holds the optimiser's state and step and the net's random state,
   so that training resumes exactly. Load it into the same net and optimiser kind;
   loading is all or nothing, as nn_load_weights. */
NNDEF nn_status nn_save_checkpoint(nn_net *net, const nn_optim *opt, const char *path);
NNDEF nn_status nn_load_checkpoint(nn_net *net, nn_optim *opt, const char *path);
#endif

/* ---- Quantized inference (int8) ---------------------------------------------------
   nn_quantize makes an int8 inference net of a trained float net, with PyTorch's
   post-training static quantization (torch.ao.quantization): weights int8 per output
   channel, symmetric; activations uint8 per tensor, scaled to 7 bits (reduce_range:
   the calibrated range is 0..127) with a zero point, their ranges from the calibration
   images run through the float
   net in evaluation mode; every BatchNorm folded into the Conv2d or Linear before it,
   a ReLU after them fused; int32 sums requantized by fixed-point multipliers. Its
   nn_forward takes the same float input and returns float logits (the input is
   quantized in the first layer, the last Conv2d or Linear dequantized). It is
   inference-only (nn_build, nn_backward and the optimisers refuse it, nn_layer_output
   has nothing to show) and nn_save / nn_load read and write it (docs/FORMAT.md, int8
   tensors: about a quarter of the float file). The same bits on every CPU: the AVX2
   and NEON kernels are exact against the scalar one. Layers: Conv2d (any stride,
   padding, dilation, groups), Linear, BatchNorm after them, ReLU, LeakyReLU, Sigmoid,
   Tanh, GELU, Softplus, Hardtanh, Scale, MaxPool2d, AvgPool2d, GlobalAvgPool, Flatten,
   Dropout; anything else (residual blocks) is NN_ERR_ARG naming the layer. */

typedef struct nn_quantize_desc {
    int max_batch;        /* 0: the float net's max batch */
} nn_quantize_desc;

/* An int8 net of net (built: trained or loaded, left as it is) calibrated on the first
   count samples of calibration (the net's input, preprocessed as for nn_forward),
   with its preprocessing and class names; NULL with nn_error() set: NN_ERR_ARG for a
   NULL net or set, count outside 1..calibration->n, a sample shape that is not the
   net's, a negative max_batch, an unsupported layer; NN_ERR_STATE for a net that is not
   built; NN_ERR_NUMERIC for a weight that is not finite. */
NNDEF nn_net   *nn_quantize(nn_net *net, const nn_dataset *calibration, int count,
                            nn_quantize_desc desc);
/* 1 for an int8 net (nn_quantize, or a file of one loaded), else 0. */
NNDEF int       nn_is_quantized(const nn_net *net);

/* ---- ONNX: import and export (leave out with NN_NO_ONNX) ---------------------------- */

#ifndef NN_NO_ONNX
/* Import. */
/* Reads an ONNX model (what torch.onnx.export writes) into a built net for batches of
   up to max_batch, in evaluation mode, trainable like any net: one float32 input of
   1 to 4 dimensions (batch first), one output, the graph a chain of the operators
   nn.h has layers for (docs/ONNX.md lists them, the opsets and the mapping), residual
   blocks where a value feeds two paths that an Add joins. Layers are named after
   their weights ("features.0" from "features.0.weight") where every such name is a
   valid nn.h name and none clash, else by index. NULL with nn_error() set for any
   failure: a damaged or hostile file (NN_ERR_FORMAT; checked before anything is
   allocated beyond the bytes it holds, at most NN_MAX_BUILD_BYTES in all), an
   operator or attribute value nn.h cannot express (naming the node and operator),
   max_batch < 1 or a NULL data (NN_ERR_ARG). */
NNDEF nn_net *nn_load_onnx_memory(const void *data, size_t size, int max_batch);
#ifndef NN_NO_STDIO
NNDEF nn_net *nn_load_onnx(const char *path, int max_batch);
#endif

/* Export. */
/* The net as an ONNX model (opset 13, IR version 7): the graph of its evaluation mode
   (BatchNorm with the running statistics, Dropout left out, whatever nn_set_training
   says), the parameters and running statistics as float32 initializers named as in the
   net ("0.weight", "layer1.0.bn1.running_mean"), one input "input" of N x C x H x W
   (N x F for a net of (F, 1, 1) inputs) and one output "output" of N x outputs (or
   N x C x H x W where the output is an image), N a dynamic dimension. The same net gives
   the same bytes. docs/ONNX.md lists what each layer becomes. NN_ERR_ARG for a NULL
   argument or a model past protobuf's 2 GiB, NN_ERR_STATE for a net that is not built;
   a trainable and an inference-only net export alike. Free *data with nn_free_buffer. */
NNDEF nn_status nn_save_onnx_memory(nn_net *net, unsigned char **data, size_t *size);
#ifndef NN_NO_STDIO
/* Writes "<path>.tmp" and renames it over path once complete, as nn_save. */
NNDEF nn_status nn_save_onnx(nn_net *net, const char *path);
#endif

#endif

/* ---- Metrics ---------------------------------------------------------------------- */

/* Evaluates a classifier on a whole data set in batches of up to the net's max batch
   (the last partial batch included), in evaluation mode (restored afterwards).
   Any output may be NULL; confusion is K x K ints, rows = true class, with K =
   d->num_classes (or the net's output size when d->num_classes is 0); the net must
   have at least K outputs, and a prediction of an output >= K counts as wrong and is
   in no cell. Every label must lie in [0, K): else NN_ERR_ARG before anything is
   written. NULL net or d: NN_ERR_ARG; an unbuilt net: NN_ERR_STATE. Logits with a NaN
   or infinity: the outputs are written (the loss NaN or inf as PyTorch's, a NaN
   logit counting as the prediction, as torch.argmax) and NN_ERR_NUMERIC names the
   first such sample. */
NNDEF nn_status nn_evaluate(nn_net *net, const nn_dataset *d, float *mean_loss,
                            float *accuracy, int *confusion);
/* Test-time augmentation (airbench94's levels), logits of n <= max_batch images x
   (the net's input, images with h and w > 1) into out (n x outputs), in evaluation
   mode (restored afterwards); f is the net, flip(x) the left-right mirror, and t1, t2
   x moved one pixel down-right and up-left (padded by reflection, as nn_augment's
   reflect):
       level 0:  f(x)
       level 1:  m(x) = 0.5 f(x) + 0.5 f(flip(x))
       level 2:  0.5 m(x) + 0.5 (m(t1) + m(t2)) / 2
   (weights 1/4 for x and its mirror, 1/8 for each of the four moved views). It
   allocates its views (n images) on each call. NN_ERR_ARG for a NULL pointer, n
   outside 1..max_batch, a level outside 0..2 or samples that are not images;
   NN_ERR_STATE for an unbuilt net. */
NNDEF nn_status nn_forward_tta(nn_net *net, const float *x, int n, int level, float *out);
/* nn_evaluate on the TTA logits of nn_forward_tta (the same outputs, checks and
   errors; level 0 is nn_evaluate's result). */
NNDEF nn_status nn_evaluate_tta(nn_net *net, const nn_dataset *d, int level, float *mean_loss,
                                float *accuracy, int *confusion);
/* Index of the largest of n values (the first on ties); a NaN counts as larger than
   any number (the first NaN wins), as torch.argmax. 0 for n <= 1 or a NULL v. */
NNDEF int       nn_argmax(const float *v, int n);
#ifndef NN_NO_STDIO
/* The confusion matrix (classes x classes, rows = true class) with per-class accuracy
   as a readable table; names may be NULL, and so may any entry (its index is printed).
   NN_ERR_ARG for a NULL out or confusion or classes < 1, NN_ERR_IO if writing failed. */
NNDEF nn_status nn_print_confusion(FILE *out, const int *confusion, int classes,
                                   const char *const *names);
#endif

#ifdef __cplusplus
}
#endif
#endif /* NN_H */

/* =================================================================================
   IMPLEMENTATION
   ================================================================================= */
#ifdef NN_IMPLEMENTATION
#ifndef NN_IMPLEMENTATION_DONE
#define NN_IMPLEMENTATION_DONE

#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>    /* vsnprintf always; files only without NN_NO_STDIO */
#include <string.h>

#if defined(NN_MALLOC) != defined(NN_FREE)
#error "define both NN_MALLOC and NN_FREE, or neither"
#endif
#ifndef NN_MALLOC
#include <stdlib.h>
#define NN_MALLOC(size) malloc(size)
#define NN_FREE(p) free(p)
#define NN__CALLOC(size) calloc(1, size)
#endif
/* The most bytes nn_build may allocate for one net (activations, gradients, parameters,
   workspaces), checked before it allocates anything; nn_load uses it for untrusted files. */
#ifndef NN_MAX_BUILD_BYTES
#if SIZE_MAX > 0xffffffffu
#define NN_MAX_BUILD_BYTES ((size_t)8 << 30)
#else
#define NN_MAX_BUILD_BYTES ((size_t)1 << 30)
#endif
#endif
#ifndef NN_ASSERT
#include <assert.h>
#define NN_ASSERT(cond) assert(cond)
#endif

#ifndef NN_NO_SIMD
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define NN__X86 1
#elif defined(__aarch64__) && defined(__ARM_NEON)
#define NN__NEON 1
#endif
#endif

/* Thread-local storage (the error message, the pool's per-thread state): the keyword of
   the language, else the compiler's; NN_THREAD_LOCAL overrides the choice. */
#if defined(NN_THREAD_LOCAL)
#define NN__THREAD_LOCAL NN_THREAD_LOCAL
#elif defined(__cplusplus) && __cplusplus >= 201103L
#define NN__THREAD_LOCAL thread_local
#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
#define NN__THREAD_LOCAL _Thread_local
#elif defined(_MSC_VER)
#define NN__THREAD_LOCAL __declspec(thread)
#elif defined(__GNUC__) || defined(__clang__)
#define NN__THREAD_LOCAL __thread
#else
#error "nn.h: no thread-local storage known for this compiler; define NN_THREAD_LOCAL"
#endif

/* ---- Errors ---------------------------------------------------------------------
   One message per thread. Every public function that can fail clears it first
   (nn__error_clear), so that nn_error() describes the latest call: the failure it
   reported, or "no error" after a call that succeeded. Clearing only marks the text
   as old: a pass that records a failure and goes on through public functions (the
   layers after a synchronised BatchNorm whose hook failed run nn_gemm) makes it the
   latest again with nn__error_again before it returns the failure. */

static NN__THREAD_LOCAL char nn__error_text[512];
static NN__THREAD_LOCAL int nn__error_fresh;   /* the text is the latest call's failure */

NNDEF const char *nn_error(void) { return nn__error_fresh && nn__error_text[0] ? nn__error_text : "no error"; }

static void nn__error_clear(void) { nn__error_fresh = 0; }
static void nn__error_again(void) { nn__error_fresh = 1; }

/* Records a formatted message and returns the status, so that callers can write
   `return nn__fail(NN_ERR_IO, "%s: cannot open", path);`. */
static nn_status nn__fail(nn_status status, const char *fmt, ...)
{
    va_list ap;
    NN_ASSERT(status != NN_OK && fmt);
    va_start(ap, fmt);
    vsnprintf(nn__error_text, sizeof nn__error_text, fmt, ap);
    va_end(ap);
    nn__error_fresh = 1;
    return status;
}

/* Prefixes the current message with "prefix: " unless it already starts with it. */
static nn_status nn__prefix_error(const char *prefix, nn_status st)
{
    if (st != NN_OK && strncmp(nn__error_text, prefix, strlen(prefix))) {
        char why[sizeof nn__error_text];
        memcpy(why, nn__error_text, sizeof why);
        nn__fail(st, "%s: %s", prefix, why);
    }
    return st;
}

NNDEF const char *nn_status_name(nn_status s)
{
    switch (s) {
    case NN_OK: return "NN_OK";
    case NN_ERR_ARG: return "NN_ERR_ARG";
    case NN_ERR_NOMEM: return "NN_ERR_NOMEM";
    case NN_ERR_IO: return "NN_ERR_IO";
    case NN_ERR_FORMAT: return "NN_ERR_FORMAT";
    case NN_ERR_NUMERIC: return "NN_ERR_NUMERIC";
    case NN_ERR_STATE: return "NN_ERR_STATE";
    }
    return "NN_ERR_UNKNOWN";
}

/* ---- Memory ----------------------------------------------------------------------
   Buffers are 64-byte aligned (one cache line, a whole AVX-512 register) on top of
   NN_MALLOC: the offset to the original pointer is kept just below the block.
   Zeroed buffers come from calloc when NN_MALLOC is not overridden: the system hands
   out large blocks as untouched zero pages, so a buffer that a run never uses (an
   input gradient during inference, say) costs address space only, not memory. */

#define NN__ALIGN 64

static void *nn__alloc_raw(size_t size, int zeroed)
{
    unsigned char *raw, *p;
    if (size > SIZE_MAX - NN__ALIGN - sizeof(void *)) return NULL;
#ifdef NN__CALLOC
    raw = (unsigned char *)(zeroed ? NN__CALLOC(size + NN__ALIGN + sizeof(void *))
                                   : NN_MALLOC(size + NN__ALIGN + sizeof(void *)));
#else
    raw = (unsigned char *)NN_MALLOC(size + NN__ALIGN + sizeof(void *));
    if (raw && zeroed) memset(raw, 0, size + NN__ALIGN + sizeof(void *));
#endif
    if (!raw) return NULL;
    p = raw + sizeof(void *);
    p += (NN__ALIGN - (uintptr_t)p % NN__ALIGN) % NN__ALIGN;
    NN_ASSERT((uintptr_t)p % NN__ALIGN == 0 && p + size <= raw + size + NN__ALIGN + sizeof(void *));
    memcpy(p - sizeof(void *), &raw, sizeof raw);
    return p;
}

static void *nn__alloc(size_t size) { return nn__alloc_raw(size, 0); }

static void *nn__calloc(size_t count, size_t elem)
{
    if (elem && count > SIZE_MAX / elem) return NULL;
    return nn__alloc_raw(count * elem, 1);
}

static void nn__free(void *p)
{
    void *raw;
    if (!p) return;
    memcpy(&raw, (unsigned char *)p - sizeof(void *), sizeof raw);
    NN_FREE(raw);
}

/* Checked size arithmetic: 0 on overflow. */
static int nn__mul_ok(size_t a, size_t b, size_t *out)
{
    if (a && b > SIZE_MAX / a) return 0;
    *out = a * b;
    return 1;
}

/* ---- Random numbers --------------------------------------------------------------
   PCG32 (O'Neill, "PCG: a family of simple fast space-efficient statistically good
   algorithms"): a 64-bit LCG whose output is a permuted 32-bit word. */

NNDEF uint32_t nn_rng_u32(nn_rng *r)
{
    nn__error_clear();
    uint64_t old;
    uint32_t xorshifted, rot;
    if (!r) { nn__fail(NN_ERR_ARG, "nn_rng_u32: r is NULL"); return 0; }
    old = r->state;
    r->state = old * 6364136223846793005ULL + r->inc;
    xorshifted = (uint32_t)(((old >> 18) ^ old) >> 27);
    rot = (uint32_t)(old >> 59);
    return (xorshifted >> rot) | (xorshifted << ((32 - rot) & 31));
}

NNDEF nn_rng nn_rng_new(uint64_t seed)
{
    nn_rng r;
    r.state = 0;
    r.inc = (seed << 1) | 1u;           /* any odd increment; derived from the seed */
    nn_rng_u32(&r);
    r.state += seed ^ 0x853c49e6748fea9bULL;
    nn_rng_u32(&r);
    return r;
}

NNDEF uint32_t nn_rng_below(nn_rng *r, uint32_t n)
{
    nn__error_clear();
    /* Reject the top partial range so that every residue is equally likely. */
    uint32_t limit, x;
    if (!r) { nn__fail(NN_ERR_ARG, "nn_rng_below: r is NULL"); return 0; }
    if (n <= 1) return 0;
    limit = (uint32_t)(0x100000000ULL - (0x100000000ULL % n));
    do x = nn_rng_u32(r); while (limit && x >= limit);
    return x % n;
}

NNDEF float nn_rng_uniform(nn_rng *r)
{
    nn__error_clear();
    if (!r) { nn__fail(NN_ERR_ARG, "nn_rng_uniform: r is NULL"); return 0; }
    return (float)(nn_rng_u32(r) >> 8) * (1.0f / 16777216.0f);   /* 24 exact bits */
}

NNDEF float nn_rng_normal(nn_rng *r, float mean, float std)
{
    nn__error_clear();
    /* Box-Muller in double; u1 in (0, 1] so that log(u1) is finite. */
    double u1, u2, z;
    if (!r) { nn__fail(NN_ERR_ARG, "nn_rng_normal: r is NULL"); return 0; }
    u1 = ((double)(nn_rng_u32(r) >> 8) + 1.0) / 16777216.0;
    u2 = (double)(nn_rng_u32(r) >> 8) / 16777216.0;
    z = sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
    return mean + std * (float)z;
}

NNDEF nn_status nn_rng_shuffle(nn_rng *r, int *items, int n)
{
    nn__error_clear();
    int i;
    if (!r) return nn__fail(NN_ERR_ARG, "nn_rng_shuffle: r is NULL");
    if (n < 0) return nn__fail(NN_ERR_ARG, "nn_rng_shuffle: n is %d, expected >= 0", n);
    if (!items && n > 0) return nn__fail(NN_ERR_ARG, "nn_rng_shuffle: items is NULL");
    for (i = n - 1; i > 0; i--) {
        int j = (int)nn_rng_below(r, (uint32_t)i + 1), t = items[i];
        items[i] = items[j];
        items[j] = t;
    }
    return NN_OK;
}

/* ---- Tensors --------------------------------------------------------------------- */

NNDEF nn_shape nn_shape3(int c, int h, int w) { nn_shape s; s.c = c; s.h = h; s.w = w; return s; }
NNDEF nn_shape nn_shape1(int features) { return nn_shape3(features, 1, 1); }

NNDEF size_t nn_shape_size(nn_shape s)
{
    size_t n;
    if (s.c <= 0 || s.h <= 0 || s.w <= 0) return 0;
    if (!nn__mul_ok((size_t)s.c, (size_t)s.h, &n) || !nn__mul_ok(n, (size_t)s.w, &n)) return 0;
    return n;
}

/* =================================================================================
   KERNELS
   ================================================================================= */

/* ---- Fused multiply-add ------------------------------------------------------------
   nn__fmaf(a, b, c) = a b + c rounded once, as the FMA instructions of the SIMD kernels,
   which the scalar kernels match bit for bit. The C library's fmaf is that everywhere but
   in MinGW-w64's runtime, whose fmaf rounds the product first (measured: 254,543 of a
   million random cases differ from the exact result). There it is computed in double:
   the product is exact (24 + 24 bits), the sum's rounding error e exact by TwoSum, and
   rounding the sum to odd when e is not zero makes the final rounding to float correct. */
#ifdef __MINGW32__
static float nn__fmaf(float a, float b, float c)
{
    double p = (double)a * b, s = p + c, v = s - p, e = (p - (s - v)) + (c - v);
    uint64_t u;
    if (e != 0.0 && isfinite(s)) {
        memcpy(&u, &s, sizeof u);
        if (!(u & 1)) u += (e > 0.0) == (s > 0.0) ? 1 : (uint64_t)-1;   /* one step toward the exact value */
        memcpy(&s, &u, sizeof s);
    }
    return (float)s;
}
#else
#define nn__fmaf fmaf
#endif

/* ---- Threads ---------------------------------------------------------------------
   nn__parallel(tasks, fn, ctx) runs fn(ctx, 0..tasks-1), spread over a persistent
   pool of nn_get_threads() - 1 workers plus the calling thread, and returns when all
   tasks are done. Callers split work so that results do not depend on the number of
   threads. Calls from inside a task, or while another thread uses the pool, run
   inline. Idle workers spin for about 0.1 ms, then sleep on a condition variable;
   an atexit hook stops and joins them. */

#include <stdlib.h>   /* atexit; getenv and strtol for NN_THREADS */
#ifndef NN_NO_THREADS
#include <pthread.h>   /* on Windows, MinGW-w64's winpthreads */
#ifndef _WIN32
#include <unistd.h>   /* sysconf */
#endif
#endif

typedef void (*nn__task_fn)(void *ctx, int task);

#define NN__MAX_THREADS 64

static int nn__threads;                 /* 0 until decided */
static NN__THREAD_LOCAL int nn__in_task;

/* Per-thread packing workspace for GEMM: grown on demand, then reused, so that a
   training loop with fixed shapes allocates only in its first step. */
static NN__THREAD_LOCAL float *nn__workspace;
static NN__THREAD_LOCAL size_t nn__workspace_floats;

static void nn__workspace_release(void);

#ifndef NN_NO_THREADS
/* A thread of the program's own that ran a GEMM frees its workspace when it exits:
   the workspace is also the value of a thread-specific key whose destructor frees it.
   No destructor runs for the thread that ends the program: an atexit hook frees its. */
static pthread_key_t nn__workspace_key;
static pthread_once_t nn__workspace_once = PTHREAD_ONCE_INIT;
static int nn__workspace_keyed;

static void nn__workspace_exit(void *p) { nn__free(p); }
static void nn__workspace_key_make(void)
{
    nn__workspace_keyed = pthread_key_create(&nn__workspace_key, nn__workspace_exit) == 0;
    atexit(nn__workspace_release);
}
static void nn__workspace_track(float *p)
{
    pthread_once(&nn__workspace_once, nn__workspace_key_make);
    if (nn__workspace_keyed) pthread_setspecific(nn__workspace_key, p);
}
#else
static void nn__workspace_track(float *p)
{
    static int hooked;
    if (p && !hooked) hooked = atexit(nn__workspace_release) == 0;
}
#endif

static void nn__workspace_release(void)
{
    nn__free(nn__workspace);
    nn__workspace = NULL;
    nn__workspace_floats = 0;
    nn__workspace_track(NULL);
}

static float *nn__workspace_get(size_t floats)
{
    if (floats > nn__workspace_floats) {
        size_t bytes;
        float *p;
        if (!nn__mul_ok(floats, sizeof(float), &bytes)) return NULL;
        p = (float *)nn__alloc(bytes);
        if (!p) return NULL;
        nn__free(nn__workspace);
        nn__workspace = p;
        nn__workspace_floats = floats;
        nn__workspace_track(p);
    }
    return nn__workspace;
}

static int nn__default_threads(void)
{
#ifdef NN_NO_THREADS
    return 1;
#else
    const char *env = getenv("NN_THREADS");
    long n = env ? strtol(env, NULL, 10) : 0;
#ifdef _WIN32   /* no sysconf: Windows sets NUMBER_OF_PROCESSORS for every process */
    if (n <= 0 && (env = getenv("NUMBER_OF_PROCESSORS"))) n = strtol(env, NULL, 10);
#else
    if (n <= 0) n = sysconf(_SC_NPROCESSORS_ONLN);
#endif
    if (n < 1) n = 1;
    if (n > NN__MAX_THREADS) n = NN__MAX_THREADS;
    return (int)n;
#endif
}

NNDEF nn_status nn_set_threads(int n)
{
    nn__error_clear();
    if (n < 0) return nn__fail(NN_ERR_ARG, "nn_set_threads: %d threads, expected >= 0", n);
#ifdef NN_NO_THREADS
    nn__threads = 1;
#else
    nn__threads = n == 0 ? nn__default_threads() : n > NN__MAX_THREADS ? NN__MAX_THREADS : n;
#endif
    return NN_OK;
}

NNDEF int nn_get_threads(void)
{
    if (!nn__threads) nn__threads = nn__default_threads();
    return nn__threads;
}

static void nn__run_inline(int tasks, nn__task_fn fn, void *ctx)
{
    int t, outer = nn__in_task;
    nn__in_task = 1;
    for (t = 0; t < tasks; t++) fn(ctx, t);
    nn__in_task = outer;
}

#ifdef NN_NO_THREADS

static void nn__parallel(int tasks, nn__task_fn fn, void *ctx) { nn__run_inline(tasks, fn, ctx); }

#else

static pthread_mutex_t nn__pool_lock = PTHREAD_MUTEX_INITIALIZER;   /* guards nn__pool */
static pthread_mutex_t nn__pool_owner = PTHREAD_MUTEX_INITIALIZER;  /* one job at a time */
static pthread_cond_t nn__pool_wake = PTHREAD_COND_INITIALIZER;
static pthread_cond_t nn__pool_done = PTHREAD_COND_INITIALIZER;

/* Idle threads spin this many pause instructions (about 0.1 ms) before they sleep:
   the next job usually follows soon, and a condition-variable wake-up costs tens of
   microseconds. The flags read while spinning are written atomically under the lock. */
#if defined(__GNUC__) || defined(__clang__)
#define NN__SPIN 4096
#define NN__LOAD(x) __atomic_load_n(&(x), __ATOMIC_ACQUIRE)
#define NN__STORE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELEASE)
#if defined(__x86_64__) || defined(__i386__)
#define NN__PAUSE() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define NN__PAUSE() __asm__ __volatile__("yield")
#else
#define NN__PAUSE() ((void)0)
#endif
#else
#define NN__SPIN 0
#define NN__LOAD(x) (x)
#define NN__STORE(x, v) ((x) = (v))
#define NN__PAUSE() ((void)0)
#endif

static struct nn__pool_state {
    pthread_t ids[NN__MAX_THREADS];
    int started, active, stopping, exit_hooked;
    unsigned long generation;            /* bumped for every job */
    nn__task_fn fn;
    void *ctx;
    int tasks, next, unfinished;
} nn__pool;

/* Runs the current job's tasks until none is left; nn__pool_lock is held on entry
   and on return, released while a task runs. */
static void nn__pool_drain(void)
{
    while (nn__pool.next < nn__pool.tasks) {
        int t = nn__pool.next++;
        nn__task_fn fn = nn__pool.fn;
        void *ctx = nn__pool.ctx;
        pthread_mutex_unlock(&nn__pool_lock);
        fn(ctx, t);
        pthread_mutex_lock(&nn__pool_lock);
        NN__STORE(nn__pool.unfinished, nn__pool.unfinished - 1);
        if (nn__pool.unfinished == 0) pthread_cond_signal(&nn__pool_done);
    }
}

static void *nn__pool_worker(void *arg)
{
    int index = (int)(intptr_t)arg, spin;
    unsigned long seen = 0;
    nn__in_task = 1;
    for (;;) {
        for (spin = 0; spin < NN__SPIN && NN__LOAD(nn__pool.generation) == seen &&
                       !NN__LOAD(nn__pool.stopping); spin++)
            NN__PAUSE();
        pthread_mutex_lock(&nn__pool_lock);
        while (!nn__pool.stopping && nn__pool.generation == seen)
            pthread_cond_wait(&nn__pool_wake, &nn__pool_lock);
        if (nn__pool.stopping) {
            pthread_mutex_unlock(&nn__pool_lock);
            break;
        }
        seen = nn__pool.generation;
        if (index < nn__pool.active) nn__pool_drain();
        pthread_mutex_unlock(&nn__pool_lock);
    }
    nn__workspace_release();
    return NULL;
}

static void nn__pool_stop(void)
{
    int i;
    pthread_mutex_lock(&nn__pool_lock);
    NN__STORE(nn__pool.stopping, 1);
    pthread_cond_broadcast(&nn__pool_wake);
    pthread_mutex_unlock(&nn__pool_lock);
    for (i = 0; i < nn__pool.started; i++) pthread_join(nn__pool.ids[i], NULL);
    nn__pool.started = 0;
    nn__workspace_release();   /* the exiting thread's own */
}

static void nn__parallel(int tasks, nn__task_fn fn, void *ctx)
{
    int workers = nn_get_threads() - 1, spin;
    if (tasks <= 0) return;
    if (tasks == 1 || workers < 1 || nn__in_task || pthread_mutex_trylock(&nn__pool_owner) != 0) {
        nn__run_inline(tasks, fn, ctx);
        return;
    }
    pthread_mutex_lock(&nn__pool_lock);
    if (!nn__pool.exit_hooked) nn__pool.exit_hooked = atexit(nn__pool_stop) == 0 ? 1 : -1;
    while (nn__pool.exit_hooked == 1 && !nn__pool.stopping && nn__pool.started < workers &&
           pthread_create(&nn__pool.ids[nn__pool.started], NULL, nn__pool_worker,
                          (void *)(intptr_t)nn__pool.started) == 0)
        nn__pool.started++;
    nn__pool.active = nn__pool.started < workers ? nn__pool.started : workers;
    nn__pool.fn = fn;
    nn__pool.ctx = ctx;
    nn__pool.tasks = tasks;
    nn__pool.next = 0;
    NN__STORE(nn__pool.unfinished, tasks);
    NN__STORE(nn__pool.generation, nn__pool.generation + 1);
    pthread_cond_broadcast(&nn__pool_wake);
    nn__in_task = 1;
    nn__pool_drain();
    pthread_mutex_unlock(&nn__pool_lock);
    for (spin = 0; spin < NN__SPIN && NN__LOAD(nn__pool.unfinished) > 0; spin++) NN__PAUSE();
    pthread_mutex_lock(&nn__pool_lock);
    while (nn__pool.unfinished > 0) pthread_cond_wait(&nn__pool_done, &nn__pool_lock);
    nn__in_task = 0;
    pthread_mutex_unlock(&nn__pool_lock);
    pthread_mutex_unlock(&nn__pool_owner);
}

#endif /* NN_NO_THREADS */

/* ---- GEMM ------------------------------------------------------------------------
   Goto / BLIS structure (Goto & van de Geijn, "Anatomy of high-performance matrix
   multiplication"; Van Zee & van de Geijn, "BLIS"):

     for jc in N by NC:            B block  KC x NC   packed once per (jc, pc)  -> L3
       for pc in K by KC:
         pack op(B)[pc, jc] into NR-wide panels
         for ic in M by MC:        A block  MC x KC   packed                     -> L2
           pack op(A)[ic, pc] into MR-tall panels
           for jr in NC by NR:     one B panel KC x NR stays in L1
             for ir in MC by MR:   micro-kernel: MR x NR tile of C in registers

   Panels are zero-padded at the matrix edges, so the micro-kernel always computes a
   full MR x NR tile; a partial tile of C is written through a small buffer. Every
   element of C is accumulated over K in the same order (KC blocks, then k within a
   block) whatever the tile or thread it lands in, so splitting M or N over threads
   at MR / NR boundaries gives bit-identical results for any thread count. K is never
   split across threads. */

/* C[0..MR) x [0..NR) (row stride ldc) = alpha * Apanel * Bpanel + beta * C, where
   beta == 0 means C is not read. The epilogue multiplies and adds without fusing so
   that the partial-tile path (alpha = 1, beta = 0, then nn__tile_writeback) rounds
   exactly like a full tile. */
typedef void (*nn__micro_fn)(int kc, const float *a, const float *b, float *c, size_t ldc,
                             float alpha, float beta);

/* The same for a 2 MR x NR/2 tile from two consecutive A panels and the first NR/2
   columns of a B panel: a last B panel of at most NR/2 columns costs half a full tile
   (the E1 MLP's 100 hidden units are 6 x 16 + 4). Each sum is formed exactly as in the
   full tile, so results do not depend on which of the two computed them. */
typedef void (*nn__narrow_fn)(int kc, const float *a0, const float *a1, const float *b, float *c,
                              size_t ldc, float alpha, float beta);

typedef struct nn__gemm_kernel {
    const char *name;
    nn__micro_fn micro;
    int mr, nr;         /* register tile */
    int mc, kc, nc;     /* cache blocks (multiples of mr / nr) */
    nn__narrow_fn narrow;   /* or NULL */
} nn__gemm_kernel;

#define NN__MAX_MR 12
#define NN__MAX_NR 32

/* Set by the tests to compare the SIMD kernel with the portable one. */
static int nn__gemm_force_scalar;

static void nn__micro_scalar(int kc, const float *a, const float *b, float *c, size_t ldc,
                             float alpha, float beta)
{
    float acc[4][8];
    int p, i, j;
    memset(acc, 0, sizeof acc);
    for (p = 0; p < kc; p++, a += 4, b += 8)
        for (i = 0; i < 4; i++)
            for (j = 0; j < 8; j++) acc[i][j] += a[i] * b[j];
    for (i = 0; i < 4; i++, c += ldc)
        for (j = 0; j < 8; j++)
            c[j] = beta == 0.0f ? alpha * acc[i][j] : alpha * acc[i][j] + beta * c[j];
}

/* Scalar blocks: a 4 x 8 tile; A block 128 x 256 (128 KiB, in L2), B panel 256 x 8. */
static const nn__gemm_kernel nn__kernel_scalar = { "scalar", nn__micro_scalar, 4, 8, 128, 256, 2048, NULL };

#ifdef NN__X86
#include <immintrin.h>

/* 6 x 16 tile: 12 ymm accumulators, 2 for the B row, 1 for the broadcast A value. */
#define NN__AVX_ROW(i, lo, hi)                                                          \
    av = _mm256_broadcast_ss(a + (i));                                                  \
    lo = _mm256_fmadd_ps(av, b0, lo);                                                   \
    hi = _mm256_fmadd_ps(av, b1, hi);
#define NN__AVX_STEP                                                                    \
    b0 = _mm256_load_ps(b);                                                             \
    b1 = _mm256_load_ps(b + 8);                                                         \
    NN__AVX_ROW(0, c00, c01) NN__AVX_ROW(1, c10, c11) NN__AVX_ROW(2, c20, c21)          \
    NN__AVX_ROW(3, c30, c31) NN__AVX_ROW(4, c40, c41) NN__AVX_ROW(5, c50, c51)          \
    a += 6;                                                                             \
    b += 16;
#define NN__AVX_STORE8(p, acc)                                                          \
    _mm256_storeu_ps(p, beta == 0.0f ? _mm256_mul_ps(va, acc)                           \
                                     : _mm256_add_ps(_mm256_mul_ps(va, acc),            \
                                                     _mm256_mul_ps(vb, _mm256_loadu_ps(p))));
#define NN__AVX_STORE(i, lo, hi)                                                        \
    NN__AVX_STORE8(c + (i) * ldc, lo) NN__AVX_STORE8(c + (i) * ldc + 8, hi)

__attribute__((target("avx2,fma")))
static void nn__micro_avx2(int kc, const float *a, const float *b, float *c, size_t ldc,
                           float alpha, float beta)
{
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    __m256 b0, b1, av, va, vb;
    int p;
    for (p = 0; p < 6; p++) {
        _mm_prefetch((const char *)(c + p * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + p * ldc + 15), _MM_HINT_T0);
    }
    for (p = 0; p + 4 <= kc; p += 4) {
        NN__AVX_STEP NN__AVX_STEP NN__AVX_STEP NN__AVX_STEP
    }
    for (; p < kc; p++) {
        NN__AVX_STEP
    }
    va = _mm256_set1_ps(alpha);
    vb = _mm256_set1_ps(beta);
    NN__AVX_STORE(0, c00, c01) NN__AVX_STORE(1, c10, c11) NN__AVX_STORE(2, c20, c21)
    NN__AVX_STORE(3, c30, c31) NN__AVX_STORE(4, c40, c41) NN__AVX_STORE(5, c50, c51)
}

/* The narrow tile, 12 x 8: 12 accumulators, 1 for the B row, 1 for the broadcast. */
#define NN__AVX_NARROW_ROW(a, i, acc) acc = _mm256_fmadd_ps(_mm256_broadcast_ss((a) + (i)), b0, acc);

__attribute__((target("avx2,fma")))
static void nn__narrow_avx2(int kc, const float *a0, const float *a1, const float *b, float *c,
                            size_t ldc, float alpha, float beta)
{
    __m256 c0 = _mm256_setzero_ps(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0;
    __m256 c6 = c0, c7 = c0, c8 = c0, c9 = c0, c10 = c0, c11 = c0, b0, va, vb;
    int p;
    for (p = 0; p < kc; p++, a0 += 6, a1 += 6, b += 16) {
        b0 = _mm256_load_ps(b);
        NN__AVX_NARROW_ROW(a0, 0, c0) NN__AVX_NARROW_ROW(a0, 1, c1) NN__AVX_NARROW_ROW(a0, 2, c2)
        NN__AVX_NARROW_ROW(a0, 3, c3) NN__AVX_NARROW_ROW(a0, 4, c4) NN__AVX_NARROW_ROW(a0, 5, c5)
        NN__AVX_NARROW_ROW(a1, 0, c6) NN__AVX_NARROW_ROW(a1, 1, c7) NN__AVX_NARROW_ROW(a1, 2, c8)
        NN__AVX_NARROW_ROW(a1, 3, c9) NN__AVX_NARROW_ROW(a1, 4, c10) NN__AVX_NARROW_ROW(a1, 5, c11)
    }
    va = _mm256_set1_ps(alpha);
    vb = _mm256_set1_ps(beta);
    NN__AVX_STORE8(c, c0) NN__AVX_STORE8(c + ldc, c1) NN__AVX_STORE8(c + 2 * ldc, c2)
    NN__AVX_STORE8(c + 3 * ldc, c3) NN__AVX_STORE8(c + 4 * ldc, c4) NN__AVX_STORE8(c + 5 * ldc, c5)
    NN__AVX_STORE8(c + 6 * ldc, c6) NN__AVX_STORE8(c + 7 * ldc, c7) NN__AVX_STORE8(c + 8 * ldc, c8)
    NN__AVX_STORE8(c + 9 * ldc, c9) NN__AVX_STORE8(c + 10 * ldc, c10) NN__AVX_STORE8(c + 11 * ldc, c11)
}

/* Zen 3: L1d 32 KiB, L2 512 KiB, L3 32 MiB (similar on Haswell..Zen 4).
   KC = 384: a B panel 384 x 16 (24 KiB) stays in L1 while A panels 384 x 6 (9 KiB)
   stream through; long K runs halve the C-tile loads/stores per FMA against KC 256.
   MC = 96: the A block 96 x 384 (144 KiB) sits in L2 next to the B panels.
   NC = 3072: the B block 384 x 3072 (4.5 MiB) stays in L3.
   Measured side by side (bench/gemm.c): 96/384 was as fast as or faster than 144/256,
   72/512 and 120/320 on square and conv shapes, within this machine's noise. */
static const nn__gemm_kernel nn__kernel_avx2 = { "avx2+fma", nn__micro_avx2, 6, 16, 96, 384, 3072,
                                                 nn__narrow_avx2 };

/* Set by the tests and bench/gemm_kernels.c to compare the AVX-512 kernel with AVX2. */
static int nn__gemm_no_avx512;

/* AVX-512F (Skylake-X, Zen 4 and later): a 12 x 32 tile, 24 zmm accumulators, 2 for
   the B row, 1 for the broadcast A value. Each C element is the same chain of fused
   multiply-adds over the same K blocks (KC 384, as AVX2) and the same epilogue, so
   the results are the AVX2 kernel's bits: a net trains to the same weights on either.
   Zen 5 and Intel's cores have two 512-bit FMA pipes, twice AVX2's work per cycle;
   Zen 4 splits each into two 256-bit halves and still saves half the instructions. */
#define NN__Z_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
#define NN__Z_ZERO(i) c##i##0 = _mm512_setzero_ps(); c##i##1 = c##i##0;
#define NN__Z_FMA(i)                                                                    \
    av = _mm512_set1_ps(a[i]);                                                          \
    c##i##0 = _mm512_fmadd_ps(av, b0, c##i##0);                                         \
    c##i##1 = _mm512_fmadd_ps(av, b1, c##i##1);
#define NN__Z_STEP                                                                      \
    b0 = _mm512_loadu_ps(b);                                                            \
    b1 = _mm512_loadu_ps(b + 16);                                                       \
    NN__Z_ROWS(NN__Z_FMA)                                                               \
    a += 12;                                                                            \
    b += 32;
#define NN__Z_STORE16(p, acc)                                                           \
    _mm512_storeu_ps(p, beta == 0.0f ? _mm512_mul_ps(va, acc)                           \
                                     : _mm512_add_ps(_mm512_mul_ps(va, acc),            \
                                                     _mm512_mul_ps(vb, _mm512_loadu_ps(p))));
#define NN__Z_STORE(i) NN__Z_STORE16(c + (i) * ldc, c##i##0) NN__Z_STORE16(c + (i) * ldc + 16, c##i##1)
#define NN__Z_FETCH(i)                                                                  \
    _mm_prefetch((const char *)(c + (i) * ldc), _MM_HINT_T0);                           \
    _mm_prefetch((const char *)(c + (i) * ldc + 31), _MM_HINT_T0);

__attribute__((target("avx2,fma,avx512f")))
static void nn__micro_avx512(int kc, const float *a, const float *b, float *c, size_t ldc,
                             float alpha, float beta)
{
    __m512 c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
    __m512 c60, c61, c70, c71, c80, c81, c90, c91, c100, c101, c110, c111;
    __m512 b0, b1, av, va, vb;
    int p;
    NN__Z_ROWS(NN__Z_ZERO)
    NN__Z_ROWS(NN__Z_FETCH)
    for (p = 0; p + 4 <= kc; p += 4) {
        NN__Z_STEP NN__Z_STEP NN__Z_STEP NN__Z_STEP
    }
    for (; p < kc; p++) {
        NN__Z_STEP
    }
    va = _mm512_set1_ps(alpha);
    vb = _mm512_set1_ps(beta);
    NN__Z_ROWS(NN__Z_STORE)
}

/* The narrow tile, 24 x 16: one zmm a row for the first 16 columns of a B panel. */
#define NN__Z_NARROW_ROW(i) n##i = _mm512_fmadd_ps(_mm512_set1_ps(i < 12 ? a0[i] : a1[i - 12]), b0, n##i);
#define NN__Z_NARROW_ZERO(i) n##i = _mm512_setzero_ps();
#define NN__Z_NARROW_STORE(i) NN__Z_STORE16(c + (i) * ldc, n##i)
#define NN__Z_ROWS24(X) NN__Z_ROWS(X) X(12) X(13) X(14) X(15) X(16) X(17) X(18) X(19) X(20) X(21) X(22) X(23)

__attribute__((target("avx2,fma,avx512f")))
static void nn__narrow_avx512(int kc, const float *a0, const float *a1, const float *b, float *c,
                              size_t ldc, float alpha, float beta)
{
    __m512 n0, n1, n2, n3, n4, n5, n6, n7, n8, n9, n10, n11, n12, n13, n14, n15, n16, n17, n18;
    __m512 n19, n20, n21, n22, n23, b0, va, vb;
    int p;
    NN__Z_ROWS24(NN__Z_NARROW_ZERO)
    for (p = 0; p < kc; p++, a0 += 12, a1 += 12, b += 32) {
        b0 = _mm512_loadu_ps(b);
        NN__Z_ROWS24(NN__Z_NARROW_ROW)
    }
    va = _mm512_set1_ps(alpha);
    vb = _mm512_set1_ps(beta);
    NN__Z_ROWS24(NN__Z_NARROW_STORE)
}

/* The AVX2 kernel's KC (the bits); MC 96 = 8 A panels (144 KiB, in L2); the B panel
   384 x 32 (48 KiB) is at L1's size, and a 12 x 32 tile needs 15 bytes of it a cycle
   at most, which L2 delivers too. */
static const nn__gemm_kernel nn__kernel_avx512 = { "avx512f", nn__micro_avx512, 12, 32, 96, 384, 3072,
                                                   nn__narrow_avx512 };
#endif /* NN__X86 */

#ifdef NN__NEON
#include <arm_neon.h>

/* 8 x 12 tile: 24 q-register accumulators, 2 for the A column, 3 for the B row. */
#define NN__NEON_ROW(r0, r1, r2, av, lane)                                              \
    r0 = vfmaq_laneq_f32(r0, b0, av, lane);                                             \
    r1 = vfmaq_laneq_f32(r1, b1, av, lane);                                             \
    r2 = vfmaq_laneq_f32(r2, b2, av, lane);
#define NN__NEON_STORE1(p, r)                                                           \
    vst1q_f32(p, beta == 0.0f ? vmulq_n_f32(r, alpha)                                   \
                              : vaddq_f32(vmulq_n_f32(r, alpha), vmulq_n_f32(vld1q_f32(p), beta)));
#define NN__NEON_STORE(i, r0, r1, r2)                                                   \
    NN__NEON_STORE1(c + (i) * ldc, r0)                                                  \
    NN__NEON_STORE1(c + (i) * ldc + 4, r1)                                              \
    NN__NEON_STORE1(c + (i) * ldc + 8, r2)

static void nn__micro_neon(int kc, const float *a, const float *b, float *c, size_t ldc,
                           float alpha, float beta)
{
    float32x4_t c00 = vdupq_n_f32(0.0f), c01 = c00, c02 = c00, c10 = c00, c11 = c00, c12 = c00;
    float32x4_t c20 = c00, c21 = c00, c22 = c00, c30 = c00, c31 = c00, c32 = c00;
    float32x4_t c40 = c00, c41 = c00, c42 = c00, c50 = c00, c51 = c00, c52 = c00;
    float32x4_t c60 = c00, c61 = c00, c62 = c00, c70 = c00, c71 = c00, c72 = c00;
    int p;
    for (p = 0; p < kc; p++, a += 8, b += 12) {
        float32x4_t a0 = vld1q_f32(a), a1 = vld1q_f32(a + 4);
        float32x4_t b0 = vld1q_f32(b), b1 = vld1q_f32(b + 4), b2 = vld1q_f32(b + 8);
        NN__NEON_ROW(c00, c01, c02, a0, 0) NN__NEON_ROW(c10, c11, c12, a0, 1)
        NN__NEON_ROW(c20, c21, c22, a0, 2) NN__NEON_ROW(c30, c31, c32, a0, 3)
        NN__NEON_ROW(c40, c41, c42, a1, 0) NN__NEON_ROW(c50, c51, c52, a1, 1)
        NN__NEON_ROW(c60, c61, c62, a1, 2) NN__NEON_ROW(c70, c71, c72, a1, 3)
    }
    NN__NEON_STORE(0, c00, c01, c02) NN__NEON_STORE(1, c10, c11, c12)
    NN__NEON_STORE(2, c20, c21, c22) NN__NEON_STORE(3, c30, c31, c32)
    NN__NEON_STORE(4, c40, c41, c42) NN__NEON_STORE(5, c50, c51, c52)
    NN__NEON_STORE(6, c60, c61, c62) NN__NEON_STORE(7, c70, c71, c72)
}

/* Typical aarch64 cores (64 KiB L1d, >= 1 MiB L2): B panel 256 x 12 (12 KiB) and
   A panel 256 x 8 in L1, A block 128 x 256 (128 KiB) in L2. */
static const nn__gemm_kernel nn__kernel_neon = { "neon", nn__micro_neon, 8, 12, 128, 256, 3072, NULL };
#endif /* NN__NEON */

static const nn__gemm_kernel *nn__gemm_pick(void)
{
    if (nn__gemm_force_scalar) return &nn__kernel_scalar;
#if defined(NN__X86)
    if (!nn__gemm_no_avx512 && __builtin_cpu_supports("avx512f")) return &nn__kernel_avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return &nn__kernel_avx2;
#elif defined(NN__NEON)
    return &nn__kernel_neon;
#endif
    return &nn__kernel_scalar;
}

NNDEF const char *nn_simd_name(void) { return nn__gemm_pick()->name; }

/* The entry checks of nn_gemm and nn_gemm_reference (their header comment);
   reads_ab: whether the kernel will read A and B. */
static nn_status nn__gemm_check(const char *fn, int trans_a, int trans_b, int m, int n, int k,
                                int reads_ab, const float *a, int lda, const float *b, int ldb,
                                const float *c, int ldc)
{
    int row_a = trans_a ? m : k, row_b = trans_b ? k : n;
    if (m < 0 || n < 0 || k < 0)
        return nn__fail(NN_ERR_ARG, "%s: m, n, k = %d, %d, %d, expected >= 0", fn, m, n, k);
    if (m == 0 || n == 0) return NN_OK;
    if (!c) return nn__fail(NN_ERR_ARG, "%s: c is NULL", fn);
    if (ldc < (n > 1 ? n : 1)) return nn__fail(NN_ERR_ARG, "%s: ldc %d < n = %d", fn, ldc, n);
    if (!reads_ab) return NN_OK;
    if (!a || !b) return nn__fail(NN_ERR_ARG, "%s: %s is NULL", fn, a ? "b" : "a");
    if (lda < (row_a > 1 ? row_a : 1) || ldb < (row_b > 1 ? row_b : 1))
        return nn__fail(NN_ERR_ARG, "%s: lda %d, ldb %d below the row lengths %d, %d",
                        fn, lda, ldb, row_a, row_b);
    return NN_OK;
}

NNDEF nn_status nn_gemm_reference(int trans_a, int trans_b, int m, int n, int k, float alpha,
                                  const float *a, int lda, const float *b, int ldb,
                                  float beta, float *c, int ldc)
{
    nn__error_clear();
    int i, j, p;
    nn_status st = nn__gemm_check("nn_gemm_reference", trans_a, trans_b, m, n, k, k > 0,
                                  a, lda, b, ldb, c, ldc);
    if (st != NN_OK) return st;
    for (i = 0; i < m; i++) {
        for (j = 0; j < n; j++) {
            float sum = 0.0f;
            for (p = 0; p < k; p++) {
                float av = trans_a ? a[(size_t)p * lda + i] : a[(size_t)i * lda + p];
                float bv = trans_b ? b[(size_t)j * ldb + p] : b[(size_t)p * ldb + j];
                sum += av * bv;
            }
            c[(size_t)i * ldc + j] = alpha * sum + (beta == 0.0f ? 0.0f : beta * c[(size_t)i * ldc + j]);
        }
    }
    return NN_OK;
}

/* Copies n floats; for the register-tile widths the size is a constant, so the
   compiler emits a few vector moves instead of a loop or a call. */
static void nn__copy_run(float *dst, const float *src, int n)
{
    switch (n) {
    case 4: memcpy(dst, src, 4 * sizeof(float)); break;
    case 6: memcpy(dst, src, 6 * sizeof(float)); break;
    case 8: memcpy(dst, src, 8 * sizeof(float)); break;
    case 12: memcpy(dst, src, 12 * sizeof(float)); break;
    case 16: memcpy(dst, src, 16 * sizeof(float)); break;
    default: memcpy(dst, src, (size_t)n * sizeof(float)); break;
    }
}

/* Fills a w-wide panel from `lines` lines that run along K (line i at src + i*ld):
   dst[p*w + i] = line i [p], zero for i >= lines. This is op(A) not transposed and
   op(B) transposed. With the power-of-two strides of conv shapes, all lines fall in
   one cache set, so only four are read at a time (SSE: 4 x 4 transposes), then two,
   then one. */
static void nn__pack_gather(const float *src, int ld, int lines, int kb, int w, float *dst)
{
    int i = 0, p;
    if (lines < w) memset(dst, 0, (size_t)w * kb * sizeof(float));   /* padding lines */
#ifdef NN__X86
    for (; i + 4 <= lines; i += 4) {
        const float *l0 = src + (size_t)i * ld, *l1 = l0 + ld, *l2 = l1 + ld, *l3 = l2 + ld;
        float *d = dst + i;
        for (p = 0; p + 4 <= kb; p += 4, d += 4 * w) {
            __m128 r0 = _mm_loadu_ps(l0 + p), r1 = _mm_loadu_ps(l1 + p);
            __m128 r2 = _mm_loadu_ps(l2 + p), r3 = _mm_loadu_ps(l3 + p);
            _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
            _mm_storeu_ps(d, r0);
            _mm_storeu_ps(d + w, r1);
            _mm_storeu_ps(d + 2 * w, r2);
            _mm_storeu_ps(d + 3 * w, r3);
        }
        for (; p < kb; p++, d += w) {
            d[0] = l0[p];
            d[1] = l1[p];
            d[2] = l2[p];
            d[3] = l3[p];
        }
    }
    for (; i + 2 <= lines; i += 2) {   /* e.g. rows 4 and 5 of a 6-row A panel */
        const float *l0 = src + (size_t)i * ld, *l1 = l0 + ld;
        float *d = dst + i;
        for (p = 0; p + 4 <= kb; p += 4, d += 4 * w) {
            __m128 r0 = _mm_loadu_ps(l0 + p), r1 = _mm_loadu_ps(l1 + p);
            __m128 lo = _mm_unpacklo_ps(r0, r1), hi = _mm_unpackhi_ps(r0, r1);
            _mm_storel_pi((__m64 *)d, lo);
            _mm_storeh_pi((__m64 *)(d + w), lo);
            _mm_storel_pi((__m64 *)(d + 2 * w), hi);
            _mm_storeh_pi((__m64 *)(d + 3 * w), hi);
        }
        for (; p < kb; p++, d += w) {
            d[0] = l0[p];
            d[1] = l1[p];
        }
    }
#endif
    for (; i < lines; i++) {
        const float *line = src + (size_t)i * ld;
        for (p = 0; p < kb; p++) dst[(size_t)p * w + i] = line[p];
    }
}

/* Fills the panels of a block whose K rows are contiguous (row p at src + p*ld holds
   `count` values): this is op(A) transposed and op(B) not transposed. Each row is read
   sequentially and dealt out w values at a time to consecutive panels (panel size
   w*kb); the last panel is zero-padded to w. */
static void nn__pack_deal(const float *src, int ld, int count, int kb, int w, float *dst)
{
    int j0, j, p;
    for (p = 0; p < kb; p++) {
        const float *row = src + (size_t)p * ld;
        float *d = dst + (size_t)p * w;
        for (j0 = 0; j0 + w <= count; j0 += w, d += (size_t)w * kb) nn__copy_run(d, row + j0, w);
        if (j0 < count) {
            for (j = 0; j < count - j0; j++) d[j] = row[j0 + j];
            for (; j < w; j++) d[j] = 0.0f;
        }
    }
}

/* Packs the mb x kb block of op(A) starting at a into mr-tall panels: panel r holds,
   for each p, the mr values op(A)[r*mr .. r*mr+mr-1][p]; rows past mb are zero. */
static void nn__pack_a(int trans, const float *a, int lda, int mb, int kb, int mr, float *dst)
{
    int i0;
    if (trans) {
        nn__pack_deal(a, lda, mb, kb, mr, dst);
        return;
    }
    for (i0 = 0; i0 < mb; i0 += mr, dst += (size_t)mr * kb)
        nn__pack_gather(a + (size_t)i0 * lda, lda, mb - i0 < mr ? mb - i0 : mr, kb, mr, dst);
}

/* Packs the kb x nb block of op(B) starting at b into nr-wide panels: panel q holds,
   for each p, the nr values op(B)[p][q*nr .. q*nr+nr-1]; columns past nb are zero. */
static void nn__pack_b(int trans, const float *b, int ldb, int kb, int nb, int nr, float *dst)
{
    int j0;
    if (!trans) {
        nn__pack_deal(b, ldb, nb, kb, nr, dst);
        return;
    }
    for (j0 = 0; j0 < nb; j0 += nr, dst += (size_t)nr * kb)
        nn__pack_gather(b + (size_t)j0 * ldb, ldb, nb - j0 < nr ? nb - j0 : nr, kb, nr, dst);
}

/* C = alpha * T + beta * C for the rows x cols corner of a tile T (row stride ldt). */
static void nn__tile_writeback(const float *t, int ldt, float *c, size_t ldc, int rows, int cols,
                               float alpha, float beta)
{
    int i, j;
    for (i = 0; i < rows; i++, t += ldt, c += ldc)
        for (j = 0; j < cols; j++)
            c[j] = beta == 0.0f ? alpha * t[j] : alpha * t[j] + beta * c[j];
}

static int nn__round_up(int x, int multiple) { return (x + multiple - 1) / multiple * multiple; }

/* Splits total into equal blocks of at most max_block, each rounded up to unit. */
static int nn__even_block(int total, int max_block, int unit)
{
    int blocks = (total + max_block - 1) / max_block;
    return nn__round_up((total + blocks - 1) / blocks, unit);
}

/* One micro-kernel call; a partial tile (rows < mr or cols < nr) goes through a buffer. */
static void nn__gemm_tile(const nn__gemm_kernel *kd, int kb, const float *ap, const float *bp,
                          float *c, int ldc, int rows, int cols, float alpha, float beta)
{
    float tile[NN__MAX_MR * NN__MAX_NR];
    if (rows == kd->mr && cols == kd->nr) {
        kd->micro(kb, ap, bp, c, (size_t)ldc, alpha, beta);
    } else {
        kd->micro(kb, ap, bp, tile, (size_t)kd->nr, 1.0f, 0.0f);
        nn__tile_writeback(tile, kd->nr, c, (size_t)ldc, rows, cols, alpha, beta);
    }
}

/* The tiles of one B panel down the mb rows of a packed A block: pairs of A panels in
   narrow tiles when the panel has at most NR/2 columns, else (and for a last odd
   panel) one full tile per A panel. */
static void nn__gemm_down(const nn__gemm_kernel *kd, int kb, const float *a_pack, const float *bp,
                          float *c, int ldc, int mb, int cols, float alpha, float beta)
{
    const int mr = kd->mr, half = kd->nr / 2;
    float tile[NN__MAX_MR * NN__MAX_NR];   /* 2 MR x NR/2 */
    int ir = 0;
    if (kd->narrow && cols <= half)
        for (; ir + mr < mb; ir += 2 * mr) {
            const float *a0 = a_pack + (size_t)ir * kb, *a1 = a0 + (size_t)mr * kb;
            int rows = mb - ir < 2 * mr ? mb - ir : 2 * mr;
            if (rows == 2 * mr && cols == half) {
                kd->narrow(kb, a0, a1, bp, c + (size_t)ir * ldc, (size_t)ldc, alpha, beta);
            } else {
                kd->narrow(kb, a0, a1, bp, tile, (size_t)half, 1.0f, 0.0f);
                nn__tile_writeback(tile, half, c + (size_t)ir * ldc, (size_t)ldc, rows, cols, alpha, beta);
            }
        }
    for (; ir < mb; ir += mr)
        nn__gemm_tile(kd, kb, a_pack + (size_t)ir * kb, bp, c + (size_t)ir * ldc, ldc,
                      mb - ir < mr ? mb - ir : mr, cols, alpha, beta);
}

/* K blocks up to this long use the row-wise tile order (measured: +10..15% at K = 27
   and 64, -8% at K = 128). */
#define NN__SHORT_K 64

/* The single-threaded blocked GEMM (k > 0) on the calling thread's workspace. */
static void nn__gemm_blocked(const nn__gemm_kernel *kd, int trans_a, int trans_b, int m, int n,
                             int k, float alpha, const float *a, int lda, const float *b, int ldb,
                             float beta, float *c, int ldc)
{
    const int mr = kd->mr, nr = kd->nr;
    /* K blocks depend on k alone (never on the thread split): that fixes the order of
       the sums. MC and NC only choose which tiles share a packed block. */
    const int kc = nn__even_block(k, kd->kc, 1);
    const int mc = nn__even_block(m, kd->mc, mr), nc = nn__even_block(n, kd->nc, nr);
    const size_t a_size = (size_t)nn__round_up(mc * kc, 16), b_size = (size_t)nc * kc;
    float *a_pack = nn__workspace_get(a_size + b_size), *b_pack;
    int jc, pc, ic, jr, ir;
    if (!a_pack) {   /* out of memory: still give the right answer */
        nn_gemm_reference(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    b_pack = a_pack + a_size;
    for (jc = 0; jc < n; jc += nc) {
        int nb = n - jc < nc ? n - jc : nc;
        for (pc = 0; pc < k; pc += kc) {
            int kb = k - pc < kc ? k - pc : kc;
            float beta_block = pc == 0 ? beta : 1.0f;
            nn__pack_b(trans_b, trans_b ? b + (size_t)jc * ldb + pc : b + (size_t)pc * ldb + jc,
                       ldb, kb, nb, nr, b_pack);
            for (ic = 0; ic < m; ic += mc) {
                int mb = m - ic < mc ? m - ic : mc;
                nn__pack_a(trans_a, trans_a ? a + (size_t)pc * lda + ic : a + (size_t)ic * lda + pc,
                           lda, mb, kb, mr, a_pack);
                if (kb <= NN__SHORT_K) {
                    /* Short K: storing C dominates, so walk along C's rows (the A panel
                       stays in L1, B panels come from L2) rather than down its columns. */
                    for (ir = 0; ir < mb; ir += mr)
                        for (jr = 0; jr < nb; jr += nr)
                            nn__gemm_tile(kd, kb, a_pack + (size_t)ir * kb, b_pack + (size_t)jr * kb,
                                          c + (size_t)(ic + ir) * ldc + jc + jr, ldc,
                                          mb - ir < mr ? mb - ir : mr, nb - jr < nr ? nb - jr : nr,
                                          alpha, beta_block);
                } else {
                    for (jr = 0; jr < nb; jr += nr)
                        nn__gemm_down(kd, kb, a_pack, b_pack + (size_t)jr * kb, c + (size_t)ic * ldc + jc + jr,
                                      ldc, mb, nb - jr < nr ? nb - jr : nr, alpha, beta_block);
                }
            }
        }
    }
}

typedef struct nn__gemm_job {
    const nn__gemm_kernel *kd;
    int trans_a, trans_b, m, n, k, lda, ldb, ldc;
    float alpha, beta;
    const float *a, *b;
    float *c;
    int split_n, parts, units;   /* split N in NR units (else M in MR units) into parts */
} nn__gemm_job;

static void nn__gemm_task(void *ctx, int task)
{
    const nn__gemm_job *g = (const nn__gemm_job *)ctx;
    int unit = g->split_n ? g->kd->nr : g->kd->mr, total = g->split_n ? g->n : g->m;
    int lo = (int)((long long)g->units * task / g->parts) * unit;
    int hi = (int)((long long)g->units * (task + 1) / g->parts) * unit;
    if (hi > total) hi = total;
    if (lo >= hi) return;
    if (g->split_n)
        nn__gemm_blocked(g->kd, g->trans_a, g->trans_b, g->m, hi - lo, g->k, g->alpha, g->a, g->lda,
                         g->trans_b ? g->b + (size_t)lo * g->ldb : g->b + lo, g->ldb,
                         g->beta, g->c + lo, g->ldc);
    else
        nn__gemm_blocked(g->kd, g->trans_a, g->trans_b, hi - lo, g->n, g->k, g->alpha,
                         g->trans_a ? g->a + lo : g->a + (size_t)lo * g->lda, g->lda, g->b, g->ldb,
                         g->beta, g->c + (size_t)lo * g->ldc, g->ldc);
}

NNDEF nn_status nn_gemm(int trans_a, int trans_b, int m, int n, int k, float alpha,
                        const float *a, int lda, const float *b, int ldb,
                        float beta, float *c, int ldc)
{
    nn__error_clear();
    nn__gemm_job g;
    int i, j;
    nn_status st = nn__gemm_check("nn_gemm", trans_a, trans_b, m, n, k, k > 0 && alpha != 0.0f,
                                  a, lda, b, ldb, c, ldc);
    if (st != NN_OK || m == 0 || n == 0) return st;
    if (k == 0 || alpha == 0.0f) {   /* C = beta * C, without reading C when beta is 0 */
        for (i = 0; i < m; i++)
            for (j = 0; j < n; j++)
                c[(size_t)i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[(size_t)i * ldc + j];
        return NN_OK;
    }
    g.kd = nn__gemm_pick();
    g.trans_a = trans_a; g.trans_b = trans_b; g.m = m; g.n = n; g.k = k;
    g.lda = lda; g.ldb = ldb; g.ldc = ldc; g.alpha = alpha; g.beta = beta;
    g.a = a; g.b = b; g.c = c;
    /* Split the larger of M and N; below ~64^3 multiply-adds one thread is faster. */
    g.split_n = n >= m;
    g.units = g.split_n ? (n + g.kd->nr - 1) / g.kd->nr : (m + g.kd->mr - 1) / g.kd->mr;
    g.parts = (double)m * n * k < 262144.0 ? 1 : nn_get_threads();
    if (g.parts > g.units) g.parts = g.units;
    if (g.parts <= 1) nn__gemm_task(&g, 0);
    else nn__parallel(g.parts, nn__gemm_task, &g);
    return NN_OK;
}

/* ---- Products with the weights in place: inference at small batches -----------------
   C = A B with A (m x k) large and read where it lies, B (k x n) narrow: an
   inference-only net's products with few columns (a convolution's output positions of
   one image or a few, a Linear's batch of one). The GEMM above packs A, the weights, on
   every call: 9 MB packed for 4 columns costs more than the product. Here only B is
   copied, into panels of w = 4, 8 or 16 columns (zero-padded), and a tile is mr rows of
   A (each a stream from memory, prefetched) by one panel. Every C[i][j] is formed as
   the AVX2 GEMM forms it, so the results are the GEMM's bits: K is cut into the GEMM's
   blocks (nn__even_block of its kc), each block a chain of fused multiply-adds over p in
   order from 0, the blocks added in order (C = acc, then C = acc + C). The scalar
   kernel does the same with nn__fmaf (the tests' reference, bit for bit). C is stored with
   a row and a column stride, so that a Linear's y = x W^T is computed as y^T = W x^T
   with W as A. */
#define NN__WIDE_MR 8   /* the most rows of a tile */
#define NN__WIDE_NR 16  /* the widest panel */

typedef void (*nn__wide_fn)(int k, int kc, const float *const *a, const float *b, float *t);

/* The kernels write the tile t (mr x w, row stride NN__WIDE_NR). */
static void nn__wide_scalar(int k, int kc, int mr, int w, const float *const *a, const float *b, float *t)
{
    float acc[NN__WIDE_MR][NN__WIDE_NR];
    int i, j, p, p0;
    for (p0 = 0; p0 < k; p0 += kc) {
        int end = k - p0 < kc ? k : p0 + kc;
        memset(acc, 0, sizeof acc);
        for (p = p0; p < end; p++)
            for (i = 0; i < mr; i++)
                for (j = 0; j < w; j++) acc[i][j] = nn__fmaf(a[i][p], b[(size_t)p * w + j], acc[i][j]);
        for (i = 0; i < mr; i++)
            for (j = 0; j < w; j++)
                t[i * NN__WIDE_NR + j] = p0 ? acc[i][j] + t[i * NN__WIDE_NR + j] : acc[i][j];
    }
}

static void nn__wide_scalar4(int k, int kc, const float *const *a, const float *b, float *t)
{
    nn__wide_scalar(k, kc, 8, 4, a, b, t);
}
static void nn__wide_scalar8(int k, int kc, const float *const *a, const float *b, float *t)
{
    nn__wide_scalar(k, kc, 8, 8, a, b, t);
}
static void nn__wide_scalar16(int k, int kc, const float *const *a, const float *b, float *t)
{
    nn__wide_scalar(k, kc, 6, 16, a, b, t);
}

#ifdef NN__X86
#ifndef NN_WIDE_AHEAD
#define NN_WIDE_AHEAD 1024   /* floats: 4 KB ahead on every row (measured: 2x2 layers 0.72 -> 0.45 ms) */
#endif
#define NN__WIDE_FETCH(i) _mm_prefetch((const char *)(a##i + p + NN_WIDE_AHEAD), _MM_HINT_T0);
#define NN__WIDE_ROWS8(X)  X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)
#define NN__WIDE_ROWS6(X)  X(0) X(1) X(2) X(3) X(4) X(5)
#define NN__WIDE_PTR(i)    const float *a##i = a[i];
/* one block's chain into s (zero first), then the block's sum into the tile */
#define NN__WIDE_ZERO4(i)  s##i = _mm_setzero_ps();
#define NN__WIDE_FMA4(i)   s##i = _mm_fmadd_ps(_mm_broadcast_ss(a##i + p), b0, s##i);
#define NN__WIDE_ADD4(i)   _mm_storeu_ps(t + (i) * NN__WIDE_NR, p0 ? _mm_add_ps(s##i, _mm_loadu_ps(t + (i) * NN__WIDE_NR)) : s##i);
#define NN__WIDE_ZERO8(i)  s##i = _mm256_setzero_ps();
#define NN__WIDE_FMA8(i)   s##i = _mm256_fmadd_ps(_mm256_broadcast_ss(a##i + p), b0, s##i);
#define NN__WIDE_ADD8(i)   _mm256_storeu_ps(t + (i) * NN__WIDE_NR, p0 ? _mm256_add_ps(s##i, _mm256_loadu_ps(t + (i) * NN__WIDE_NR)) : s##i);
#define NN__WIDE_ZERO16(i) s##i = _mm256_setzero_ps(); h##i = s##i;
#define NN__WIDE_FMA16(i)  av = _mm256_broadcast_ss(a##i + p); s##i = _mm256_fmadd_ps(av, b0, s##i); h##i = _mm256_fmadd_ps(av, b1, h##i);
#define NN__WIDE_ADD16(i)  NN__WIDE_ADD8(i) _mm256_storeu_ps(t + (i) * NN__WIDE_NR + 8, p0 ? _mm256_add_ps(h##i, _mm256_loadu_ps(t + (i) * NN__WIDE_NR + 8)) : h##i);

/* NN__WIDE_BODY(rows, width, load the panel row): the loop over K blocks and p */
#define NN__WIDE_BODY(ROWS, W, LOAD)                                                      \
    int p, p0;                                                                           \
    ROWS(NN__WIDE_PTR)                                                                   \
    for (p0 = 0; p0 < k; p0 += kc) {                                                     \
        int end = k - p0 < kc ? k : p0 + kc;                                             \
        ROWS(NN__WIDE_ZERO##W)                                                           \
        for (p = p0; p < end; p++, b += W) {                                             \
            if (!(p & 15)) { ROWS(NN__WIDE_FETCH) }                                      \
            LOAD                                                                         \
            ROWS(NN__WIDE_FMA##W)                                                        \
        }                                                                                \
        ROWS(NN__WIDE_ADD##W)                                                            \
    }

__attribute__((target("avx2,fma")))
static void nn__wide_avx4(int k, int kc, const float *const *a, const float *b, float *t)
{
    __m128 s0, s1, s2, s3, s4, s5, s6, s7, b0;
    NN__WIDE_BODY(NN__WIDE_ROWS8, 4, b0 = _mm_loadu_ps(b);)
}

__attribute__((target("avx2,fma")))
static void nn__wide_avx8(int k, int kc, const float *const *a, const float *b, float *t)
{
    __m256 s0, s1, s2, s3, s4, s5, s6, s7, b0;
    NN__WIDE_BODY(NN__WIDE_ROWS8, 8, b0 = _mm256_loadu_ps(b);)
}

__attribute__((target("avx2,fma")))
static void nn__wide_avx16(int k, int kc, const float *const *a, const float *b, float *t)
{
    __m256 s0, s1, s2, s3, s4, s5, h0, h1, h2, h3, h4, h5, b0, b1, av;
    NN__WIDE_BODY(NN__WIDE_ROWS6, 16, b0 = _mm256_loadu_ps(b); b1 = _mm256_loadu_ps(b + 8);)
}
#endif /* NN__X86 */

typedef struct nn__wide_job {
    nn__wide_fn tile;
    int mr, w, m, n, k, kc, lda, parts, units;
    size_t rs, cs;
    const float *a, *panels;
    float *c;
} nn__wide_job;

static void nn__wide_task(void *ctx, int task)
{
    const nn__wide_job *g = (const nn__wide_job *)ctx;
    int lo = (int)((long long)g->units * task / g->parts) * g->mr;
    int hi = (int)((long long)g->units * (task + 1) / g->parts) * g->mr, i, j, r, q;
    const float *ap[NN__WIDE_MR];
    float t[NN__WIDE_MR * NN__WIDE_NR];
    if (hi > g->m) hi = g->m;
    for (i = lo; i < hi; i += g->mr) {
        int rows = hi - i < g->mr ? hi - i : g->mr;   /* a partial tile repeats its last row */
        for (r = 0; r < g->mr; r++) ap[r] = g->a + (size_t)(i + (r < rows ? r : rows - 1)) * g->lda;
        for (j = 0; j < g->n; j += g->w) {
            int cols = g->n - j < g->w ? g->n - j : g->w;
            g->tile(g->k, g->kc, ap, g->panels + (size_t)j * g->k, t);
            for (r = 0; r < rows; r++)
                for (q = 0; q < cols; q++) g->c[(size_t)(i + r) * g->rs + (size_t)(j + q) * g->cs] = t[r * NN__WIDE_NR + q];
        }
    }
}

/* Whether this machine has the kernels (else the products stay with the GEMM); the
   tests' forced scalar kernels count. */
static int nn__wide_ok(void)
{
    return nn__gemm_force_scalar || nn__gemm_pick() != &nn__kernel_scalar;
}

/* C[i][j] at c[i rs + j cs] = sum_p A[i][p] B[p][j] (A: m x k, row stride lda; B[p][j] at
   b[p bp + j bj]: a matrix or its transpose), split over the threads along m; the
   panels on the calling thread's workspace. m, n, k > 0 and nn__wide_ok(). 0 if the
   workspace cannot be had (nothing done). */
static int nn__gemm_wide(int m, int n, int k, const float *a, int lda, const float *b, size_t bp, size_t bj,
                         float *c, size_t rs, size_t cs)
{
    nn__wide_job g;
    int j, p, q;
    float *pack;
    g.w = n <= 4 ? 4 : n <= 8 ? 8 : 16;
    g.mr = g.w == 16 ? 6 : 8;
    pack = nn__workspace_get((size_t)((n + g.w - 1) / g.w) * g.w * k);
    if (!pack) return 0;
    for (j = 0; j < n; j += g.w) {
        int cols = n - j < g.w ? n - j : g.w;
        float *dst = pack + (size_t)j * k;
        for (p = 0; p < k; p++, dst += g.w)
            for (q = 0; q < g.w; q++) dst[q] = q < cols ? b[(size_t)p * bp + (size_t)(j + q) * bj] : 0.0f;
    }
#ifdef NN__X86
    if (!nn__gemm_force_scalar)
        g.tile = g.w == 4 ? nn__wide_avx4 : g.w == 8 ? nn__wide_avx8 : nn__wide_avx16;
    else
#endif
        g.tile = g.w == 4 ? nn__wide_scalar4 : g.w == 8 ? nn__wide_scalar8 : nn__wide_scalar16;
    g.m = m; g.n = n; g.k = k; g.lda = lda; g.rs = rs; g.cs = cs;
#ifdef NN__X86
    g.kc = nn__even_block(k, nn__kernel_avx2.kc, 1);   /* the AVX2 GEMM's blocks, forced scalar too */
#else
    g.kc = nn__even_block(k, nn__kernel_scalar.kc, 1);
#endif
    g.a = a; g.panels = pack; g.c = c;
    g.units = (m + g.mr - 1) / g.mr;
    g.parts = (double)m * n * k < 262144.0 ? 1 : nn_get_threads();
    if (g.parts > g.units) g.parts = g.units;
    if (g.parts <= 1) nn__wide_task(&g, 0);
    else nn__parallel(g.parts, nn__wide_task, &g);
    return 1;
}

/* ---- im2col / col2im --------------------------------------------------------------
   Per kernel offset, the range of output positions whose input lies inside the image
   is computed once, so the inner loop is a plain (for stride 1, contiguous) copy. */

/* Output positions o in [0, out) with 0 <= o*stride - pad + offset < size: [*lo, *hi). */
static void nn__valid_range(int out, int size, int stride, int pad, int offset, int *lo, int *hi)
{
    int first = pad - offset, last = size - 1 + pad - offset, l, h;
    if (stride == 1) {   /* no divisions: this runs once per channel and kernel offset */
        l = first <= 0 ? 0 : first;
        h = last < 0 ? 0 : last + 1;
    } else {
        l = first <= 0 ? 0 : (first + stride - 1) / stride;
        h = last < 0 ? 0 : last / stride + 1;
    }
    if (h > out) h = out;
    if (l > h) l = h;
    *lo = l;
    *hi = h;
}

/* Small outputs (the last layers of a conv net, e.g. 2x2): the row loops cost more
   than the copying, so the source offset of every (kernel offset, output) pair, or -1
   for padding, is worked out once and each channel becomes one flat loop. */
#define NN__IM2COL_MAP_MAX 256

static void nn__im2col_map(int height, int width, int kernel_h, int kernel_w, int stride_h,
                           int stride_w, int pad_h, int pad_w, int out_h, int out_w, int *map)
{
    int outputs = out_h * out_w, r, q;
    for (r = 0; r < kernel_h * kernel_w; r++)
        for (q = 0; q < outputs; q++) {
            int iy = q / out_w * stride_h - pad_h + r / kernel_w;
            int ix = q % out_w * stride_w - pad_w + r % kernel_w;
            *map++ = iy >= 0 && iy < height && ix >= 0 && ix < width ? iy * width + ix : -1;
        }
}

/* Stride 1 with out_h == height and out_w == width ("same" padding, e.g. 3x3 / pad 1):
   a col row is the image plane shifted by (ki - pad_h) rows and (kj - pad_w) columns,
   so its valid part is one contiguous copy from first to last valid entry; then the
   entries that wrapped around from a neighbouring image row are zeroed. Used for rows
   of 8 or more; below that the calls cost more than the general loops. */
static void nn__im2col_same(const float *img, int channels, int height, int width,
                            int kernel_h, int kernel_w, int pad_h, int pad_w, float *col, int ld_col)
{
    size_t plane = (size_t)height * width;
    int c, ki, kj, oy, ox, y_lo, y_hi, x_lo, x_hi;
    for (c = 0; c < channels; c++, img += plane) {
        for (ki = 0; ki < kernel_h; ki++) {
            nn__valid_range(height, height, 1, pad_h, ki, &y_lo, &y_hi);
            for (kj = 0; kj < kernel_w; kj++, col += ld_col) {
                size_t first, last;
                nn__valid_range(width, width, 1, pad_w, kj, &x_lo, &x_hi);
                if (y_lo >= y_hi || x_lo >= x_hi) {
                    memset(col, 0, plane * sizeof(float));
                    continue;
                }
                first = (size_t)y_lo * width + x_lo;
                last = (size_t)(y_hi - 1) * width + x_hi;
                memset(col, 0, first * sizeof(float));
                memcpy(col + first, img + (size_t)(y_lo + ki - pad_h) * width + (x_lo + kj - pad_w),
                       (last - first) * sizeof(float));
                memset(col + last, 0, (plane - last) * sizeof(float));
                if (x_lo > 0 || x_hi < width)
                    for (oy = y_lo; oy < y_hi; oy++) {
                        float *row = col + (size_t)oy * width;
                        for (ox = 0; ox < x_lo; ox++) row[ox] = 0.0f;
                        for (ox = x_hi; ox < width; ox++) row[ox] = 0.0f;
                    }
            }
        }
    }
}

/* The entry checks of nn_im2col and nn_col2im (their header comment); sets the
   output size. Every product the kernels form in int is bounded here. */
static nn_status nn__im2col_check(const char *fn, const float *img, const float *col,
                                  int channels, int height, int width, int kernel_h, int kernel_w,
                                  int stride_h, int stride_w, int pad_h, int pad_w, int ld_col,
                                  int *out_h, int *out_w)
{
    long long padded_h = (long long)height + 2LL * pad_h, padded_w = (long long)width + 2LL * pad_w;
    long long oh, ow;
    if (!img || !col) return nn__fail(NN_ERR_ARG, "%s: %s is NULL", fn, img ? "col" : "img");
    if (channels < 1 || height < 1 || width < 1 || kernel_h < 1 || kernel_w < 1 ||
        stride_h < 1 || stride_w < 1 || pad_h < 0 || pad_w < 0)
        return nn__fail(NN_ERR_ARG, "%s: image %dx%dx%d, kernel %dx%d, stride %dx%d, padding %dx%d: "
                        "expected sizes, kernel and stride >= 1 and padding >= 0", fn, channels,
                        height, width, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w);
    if (kernel_h > padded_h || kernel_w > padded_w)
        return nn__fail(NN_ERR_ARG, "%s: kernel %dx%d larger than the padded image %lldx%lld",
                        fn, kernel_h, kernel_w, padded_h, padded_w);
    oh = (padded_h - kernel_h) / stride_h + 1;
    ow = (padded_w - kernel_w) / stride_w + 1;
    /* In this order no product overflows a long long: each factor is <= INT_MAX. */
    if (padded_h > INT_MAX || padded_w > INT_MAX || (long long)height * width > INT_MAX ||
        oh * ow > INT_MAX || (long long)kernel_h * kernel_w > INT_MAX ||
        channels * ((long long)kernel_h * kernel_w) > INT_MAX ||
        (long long)kernel_h * kernel_w * (oh * ow) > INT_MAX ||
        (long long)pad_h + stride_h > INT_MAX || (long long)pad_w + stride_w > INT_MAX)
        return nn__fail(NN_ERR_ARG, "%s: the sizes overflow an int", fn);
    if (ld_col < oh * ow)
        return nn__fail(NN_ERR_ARG, "%s: ld_col %d < %lld output positions", fn, ld_col, oh * ow);
    *out_h = (int)oh;
    *out_w = (int)ow;
    return NN_OK;
}

NNDEF nn_status nn_im2col(const float *img, int channels, int height, int width,
                          int kernel_h, int kernel_w, int stride_h, int stride_w,
                          int pad_h, int pad_w, float *col, int ld_col)
{
    nn__error_clear();
    int out_h, out_w;
    int c, ki, kj, oy, ox, y_lo, y_hi, x_lo, x_hi;
    float *dst = col;
    nn_status st = nn__im2col_check("nn_im2col", img, col, channels, height, width, kernel_h,
                                    kernel_w, stride_h, stride_w, pad_h, pad_w, ld_col, &out_h, &out_w);
    if (st != NN_OK) return st;
    if (stride_h == 1 && stride_w == 1 && out_h == height && out_w == width && width >= 8) {
        nn__im2col_same(img, channels, height, width, kernel_h, kernel_w, pad_h, pad_w, col, ld_col);
        return NN_OK;
    }
    if (kernel_h * kernel_w * out_h * out_w <= NN__IM2COL_MAP_MAX) {
        int map[NN__IM2COL_MAP_MAX], r, q, outputs = out_h * out_w;
        nn__im2col_map(height, width, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w,
                       out_h, out_w, map);
        for (c = 0; c < channels; c++, img += (size_t)height * width)
            for (r = 0; r < kernel_h * kernel_w; r++, col += ld_col)
                for (q = 0; q < outputs; q++) {
                    int at = map[r * outputs + q];
                    col[q] = at >= 0 ? img[at] : 0.0f;
                }
        return NN_OK;
    }
    for (c = 0; c < channels; c++) {
        const float *plane = img + (size_t)c * height * width;
        for (ki = 0; ki < kernel_h; ki++) {
            nn__valid_range(out_h, height, stride_h, pad_h, ki, &y_lo, &y_hi);
            for (kj = 0; kj < kernel_w; kj++, dst += ld_col) {
                float *d = dst;
                nn__valid_range(out_w, width, stride_w, pad_w, kj, &x_lo, &x_hi);
                for (oy = 0; oy < out_h; oy++, d += out_w) {
                    /* src[i * stride_w] is the input under output lo + i; a row
                       outside the image gets the empty range */
                    int lo = 0, hi = 0;
                    const float *src = plane;
                    if (oy >= y_lo && oy < y_hi) {
                        lo = x_lo;
                        hi = x_hi;
                        src += (size_t)(oy * stride_h - pad_h + ki) * width + (lo * stride_w - pad_w + kj);
                    }
                    if (lo == 0 && hi == out_w) {
                        if (stride_w == 1)
                            for (ox = 0; ox < out_w; ox++) d[ox] = src[ox];
                        else
                            for (ox = 0; ox < out_w; ox++) d[ox] = src[ox * stride_w];
                    } else {
                        /* One pass with a select: separate short zero loops would
                           become memset calls that cost more than the row. */
                        for (ox = 0; ox < out_w; ox++)
                            d[ox] = ox >= lo && ox < hi ? src[(ox - lo) * stride_w] : 0.0f;
                    }
                }
            }
        }
    }
    return NN_OK;
}

/* dst[i] += src[i] for i < n, 4 at a time (the compiler cannot prove the two rows
   apart, so it would not vectorize this at -O2). */
static void nn__add_row(float *dst, const float *src, int n)
{
    int i = 0;
#if defined(NN__X86)
    for (; i + 4 <= n; i += 4) _mm_storeu_ps(dst + i, _mm_add_ps(_mm_loadu_ps(dst + i), _mm_loadu_ps(src + i)));
#elif defined(NN__NEON)
    for (; i + 4 <= n; i += 4) vst1q_f32(dst + i, vaddq_f32(vld1q_f32(dst + i), vld1q_f32(src + i)));
#endif
    for (; i < n; i++) dst[i] += src[i];
}

NNDEF nn_status nn_col2im(const float *col, int ld_col, int channels, int height, int width,
                          int kernel_h, int kernel_w, int stride_h, int stride_w,
                          int pad_h, int pad_w, float *img)
{
    nn__error_clear();
    int out_h, out_w;
    int c, ki, kj, oy, ox, y_lo, y_hi, x_lo, x_hi;
    const float *row = col;
    nn_status st = nn__im2col_check("nn_col2im", img, col, channels, height, width, kernel_h,
                                    kernel_w, stride_h, stride_w, pad_h, pad_w, ld_col, &out_h, &out_w);
    if (st != NN_OK) return st;
    if (kernel_h * kernel_w * out_h * out_w <= NN__IM2COL_MAP_MAX && out_w < 8) {
        int map[NN__IM2COL_MAP_MAX], r, q, outputs = out_h * out_w;
        nn__im2col_map(height, width, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w,
                       out_h, out_w, map);
        for (c = 0; c < channels; c++, img += (size_t)height * width)
            for (r = 0; r < kernel_h * kernel_w; r++, row += ld_col)
                for (q = 0; q < outputs; q++) {
                    int at = map[r * outputs + q];
                    if (at >= 0) img[at] += row[q];
                }
        return NN_OK;
    }
    for (c = 0; c < channels; c++) {
        float *plane = img + (size_t)c * height * width;
        for (ki = 0; ki < kernel_h; ki++) {
            nn__valid_range(out_h, height, stride_h, pad_h, ki, &y_lo, &y_hi);
            for (kj = 0; kj < kernel_w; kj++, row += ld_col) {
                nn__valid_range(out_w, width, stride_w, pad_w, kj, &x_lo, &x_hi);
                if (stride_h == 1 && stride_w == 1 && x_lo == 0 && x_hi == width && out_w == width) {
                    /* whole rows, consecutive in both: one run */
                    if (y_lo < y_hi)
                        nn__add_row(plane + (size_t)(y_lo - pad_h + ki) * width + (kj - pad_w),
                                    row + (size_t)y_lo * out_w, (y_hi - y_lo) * width);
                    continue;
                }
                for (oy = y_lo; oy < y_hi; oy++) {
                    const float *s = row + (size_t)oy * out_w + x_lo;
                    float *dst = plane + (size_t)(oy * stride_h - pad_h + ki) * width
                                 + (x_lo * stride_w - pad_w + kj);
                    if (stride_w == 1)
                        nn__add_row(dst, s, x_hi - x_lo);
                    else
                        for (ox = 0; ox < x_hi - x_lo; ox++) dst[ox * stride_w] += s[ox];
                }
            }
        }
    }
    return NN_OK;
}

/* Dilated im2col and col2im for Conv2d's dilation > 1: kernel offset (ki, kj) reads
   input (oy*stride_h - pad_h + ki*dil_h, ox*stride_w - pad_w + kj*dil_w), which is the
   undilated map with the offset ki*dil_h in place of ki (nn__valid_range takes it).
   The caller has checked the sizes (out_h, out_w from the dilated kernel extent). */
static void nn__im2col_dilated(const float *img, int channels, int height, int width, int kernel_h,
                               int kernel_w, int stride_h, int stride_w, int pad_h, int pad_w,
                               int dil_h, int dil_w, int out_h, int out_w, float *col, int ld_col)
{
    int c, ki, kj, oy, ox, y_lo, y_hi, x_lo, x_hi;
    for (c = 0; c < channels; c++) {
        const float *plane = img + (size_t)c * height * width;
        for (ki = 0; ki < kernel_h; ki++) {
            nn__valid_range(out_h, height, stride_h, pad_h, ki * dil_h, &y_lo, &y_hi);
            for (kj = 0; kj < kernel_w; kj++, col += ld_col) {
                float *d = col;
                nn__valid_range(out_w, width, stride_w, pad_w, kj * dil_w, &x_lo, &x_hi);
                for (oy = 0; oy < out_h; oy++, d += out_w) {
                    int inside = oy >= y_lo && oy < y_hi, lo = inside ? x_lo : out_w, hi = inside ? x_hi : out_w;
                    for (ox = 0; ox < lo; ox++) d[ox] = 0.0f;
                    if (lo < hi) {
                        const float *src = plane + (size_t)(oy * stride_h - pad_h + ki * dil_h) * width
                                           + (lo * stride_w - pad_w + kj * dil_w);
                        for (; ox < hi; ox++) d[ox] = src[(ox - lo) * stride_w];
                    }
                    for (; ox < out_w; ox++) d[ox] = 0.0f;
                }
            }
        }
    }
}

static void nn__col2im_dilated(const float *col, int ld_col, int channels, int height, int width,
                               int kernel_h, int kernel_w, int stride_h, int stride_w, int pad_h,
                               int pad_w, int dil_h, int dil_w, int out_h, int out_w, float *img)
{
    int c, ki, kj, oy, ox, y_lo, y_hi, x_lo, x_hi;
    for (c = 0; c < channels; c++) {
        float *plane = img + (size_t)c * height * width;
        for (ki = 0; ki < kernel_h; ki++) {
            nn__valid_range(out_h, height, stride_h, pad_h, ki * dil_h, &y_lo, &y_hi);
            for (kj = 0; kj < kernel_w; kj++, col += ld_col) {
                nn__valid_range(out_w, width, stride_w, pad_w, kj * dil_w, &x_lo, &x_hi);
                for (oy = y_lo; x_lo < x_hi && oy < y_hi; oy++) {
                    const float *s = col + (size_t)oy * out_w;
                    float *dst = plane + (size_t)(oy * stride_h - pad_h + ki * dil_h) * width
                                 + (x_lo * stride_w - pad_w + kj * dil_w);
                    for (ox = x_lo; ox < x_hi; ox++) dst[(ox - x_lo) * stride_w] += s[ox];
                }
            }
        }
    }
}

/* ---- 4-float vectors -------------------------------------------------------------------
   SSE on x86-64, NEON on aarch64, four plain floats elsewhere (and under NN_NO_SIMD):
   the vector loops below and the Winograd transforms are written once on these.
   even(a, b) = (a0 a2 b0 b2), odd(a, b) = (a1 a3 b1 b3), zip_lo(a, b) = (a0 b0 a1 b1),
   zip_hi(a, b) = (a2 b2 a3 b3), low(a, b) = (a0 a1 b0 b1), high(a, b) = (a2 a3 b2 b3),
   or(a, b) = the bitwise or of the lanes' bits (one cycle, unlike an add), pow2i(e) =
   2^e for lanes holding whole numbers -126 <= e <= 127 (the exponent field written),
   select_gt(p, q, a, b) = p > q ? a : b and select_le(p, q, a, b) = p <= q ? a : b lane
   by lane (both comparisons are false for NaN, so a NaN p picks b). Every lane is
   the IEEE result of the scalar operation, so the three paths agree bit for bit. */

#if defined(NN__X86)
typedef __m128 nn__v4;
static nn__v4 nn__v4_load(const float *p) { return _mm_loadu_ps(p); }
static void nn__v4_store(float *p, nn__v4 v) { _mm_storeu_ps(p, v); }
static nn__v4 nn__v4_set1(float s) { return _mm_set1_ps(s); }
static nn__v4 nn__v4_add(nn__v4 a, nn__v4 b) { return _mm_add_ps(a, b); }
static nn__v4 nn__v4_sub(nn__v4 a, nn__v4 b) { return _mm_sub_ps(a, b); }
static nn__v4 nn__v4_mul(nn__v4 a, nn__v4 b) { return _mm_mul_ps(a, b); }
static nn__v4 nn__v4_even(nn__v4 a, nn__v4 b) { return _mm_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0)); }
static nn__v4 nn__v4_odd(nn__v4 a, nn__v4 b) { return _mm_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1)); }
static nn__v4 nn__v4_zip_lo(nn__v4 a, nn__v4 b) { return _mm_unpacklo_ps(a, b); }
static nn__v4 nn__v4_zip_hi(nn__v4 a, nn__v4 b) { return _mm_unpackhi_ps(a, b); }
static nn__v4 nn__v4_low(nn__v4 a, nn__v4 b) { return _mm_movelh_ps(a, b); }
static nn__v4 nn__v4_high(nn__v4 a, nn__v4 b) { return _mm_movehl_ps(b, a); }
static nn__v4 nn__v4_div(nn__v4 a, nn__v4 b) { return _mm_div_ps(a, b); }
static nn__v4 nn__v4_sqrt(nn__v4 a) { return _mm_sqrt_ps(a); }
static nn__v4 nn__v4_abs(nn__v4 a) { return _mm_andnot_ps(_mm_set1_ps(-0.0f), a); }
static nn__v4 nn__v4_or(nn__v4 a, nn__v4 b) { return _mm_or_ps(a, b); }
static nn__v4 nn__v4_pow2i(nn__v4 e)
{
    return _mm_castsi128_ps(_mm_slli_epi32(_mm_add_epi32(_mm_cvtps_epi32(e), _mm_set1_epi32(127)), 23));
}
static nn__v4 nn__v4_select_gt(nn__v4 p, nn__v4 q, nn__v4 a, nn__v4 b)
{
    __m128 k = _mm_cmpgt_ps(p, q);
    return _mm_or_ps(_mm_and_ps(k, a), _mm_andnot_ps(k, b));
}
static nn__v4 nn__v4_select_le(nn__v4 p, nn__v4 q, nn__v4 a, nn__v4 b)
{
    __m128 k = _mm_cmple_ps(p, q);
    return _mm_or_ps(_mm_and_ps(k, a), _mm_andnot_ps(k, b));
}
#elif defined(NN__NEON)
typedef float32x4_t nn__v4;
static nn__v4 nn__v4_load(const float *p) { return vld1q_f32(p); }
static void nn__v4_store(float *p, nn__v4 v) { vst1q_f32(p, v); }
static nn__v4 nn__v4_set1(float s) { return vdupq_n_f32(s); }
static nn__v4 nn__v4_add(nn__v4 a, nn__v4 b) { return vaddq_f32(a, b); }
static nn__v4 nn__v4_sub(nn__v4 a, nn__v4 b) { return vsubq_f32(a, b); }
static nn__v4 nn__v4_mul(nn__v4 a, nn__v4 b) { return vmulq_f32(a, b); }
static nn__v4 nn__v4_even(nn__v4 a, nn__v4 b) { return vuzp1q_f32(a, b); }
static nn__v4 nn__v4_odd(nn__v4 a, nn__v4 b) { return vuzp2q_f32(a, b); }
static nn__v4 nn__v4_zip_lo(nn__v4 a, nn__v4 b) { return vzip1q_f32(a, b); }
static nn__v4 nn__v4_zip_hi(nn__v4 a, nn__v4 b) { return vzip2q_f32(a, b); }
static nn__v4 nn__v4_low(nn__v4 a, nn__v4 b) { return vcombine_f32(vget_low_f32(a), vget_low_f32(b)); }
static nn__v4 nn__v4_high(nn__v4 a, nn__v4 b) { return vcombine_f32(vget_high_f32(a), vget_high_f32(b)); }
static nn__v4 nn__v4_div(nn__v4 a, nn__v4 b) { return vdivq_f32(a, b); }
static nn__v4 nn__v4_sqrt(nn__v4 a) { return vsqrtq_f32(a); }
static nn__v4 nn__v4_abs(nn__v4 a) { return vabsq_f32(a); }
static nn__v4 nn__v4_or(nn__v4 a, nn__v4 b)
{
    return vreinterpretq_f32_u32(vorrq_u32(vreinterpretq_u32_f32(a), vreinterpretq_u32_f32(b)));
}
static nn__v4 nn__v4_pow2i(nn__v4 e)
{
    return vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(vcvtnq_s32_f32(e), vdupq_n_s32(127)), 23));
}
static nn__v4 nn__v4_select_gt(nn__v4 p, nn__v4 q, nn__v4 a, nn__v4 b) { return vbslq_f32(vcgtq_f32(p, q), a, b); }
static nn__v4 nn__v4_select_le(nn__v4 p, nn__v4 q, nn__v4 a, nn__v4 b) { return vbslq_f32(vcleq_f32(p, q), a, b); }
#else
typedef struct { float f[4]; } nn__v4;
static nn__v4 nn__v4_make(float a, float b, float c, float d)
{
    nn__v4 v;
    v.f[0] = a; v.f[1] = b; v.f[2] = c; v.f[3] = d;
    return v;
}
static nn__v4 nn__v4_load(const float *p) { return nn__v4_make(p[0], p[1], p[2], p[3]); }
static void nn__v4_store(float *p, nn__v4 v) { memcpy(p, v.f, sizeof v.f); }
static nn__v4 nn__v4_set1(float s) { return nn__v4_make(s, s, s, s); }
static nn__v4 nn__v4_add(nn__v4 a, nn__v4 b)
{
    return nn__v4_make(a.f[0] + b.f[0], a.f[1] + b.f[1], a.f[2] + b.f[2], a.f[3] + b.f[3]);
}
static nn__v4 nn__v4_sub(nn__v4 a, nn__v4 b)
{
    return nn__v4_make(a.f[0] - b.f[0], a.f[1] - b.f[1], a.f[2] - b.f[2], a.f[3] - b.f[3]);
}
static nn__v4 nn__v4_mul(nn__v4 a, nn__v4 b)
{
    return nn__v4_make(a.f[0] * b.f[0], a.f[1] * b.f[1], a.f[2] * b.f[2], a.f[3] * b.f[3]);
}
static nn__v4 nn__v4_even(nn__v4 a, nn__v4 b) { return nn__v4_make(a.f[0], a.f[2], b.f[0], b.f[2]); }
static nn__v4 nn__v4_odd(nn__v4 a, nn__v4 b) { return nn__v4_make(a.f[1], a.f[3], b.f[1], b.f[3]); }
static nn__v4 nn__v4_zip_lo(nn__v4 a, nn__v4 b) { return nn__v4_make(a.f[0], b.f[0], a.f[1], b.f[1]); }
static nn__v4 nn__v4_zip_hi(nn__v4 a, nn__v4 b) { return nn__v4_make(a.f[2], b.f[2], a.f[3], b.f[3]); }
static nn__v4 nn__v4_low(nn__v4 a, nn__v4 b) { return nn__v4_make(a.f[0], a.f[1], b.f[0], b.f[1]); }
static nn__v4 nn__v4_high(nn__v4 a, nn__v4 b) { return nn__v4_make(a.f[2], a.f[3], b.f[2], b.f[3]); }
static nn__v4 nn__v4_div(nn__v4 a, nn__v4 b)
{
    return nn__v4_make(a.f[0] / b.f[0], a.f[1] / b.f[1], a.f[2] / b.f[2], a.f[3] / b.f[3]);
}
static nn__v4 nn__v4_sqrt(nn__v4 a)
{
    return nn__v4_make(sqrtf(a.f[0]), sqrtf(a.f[1]), sqrtf(a.f[2]), sqrtf(a.f[3]));
}
static nn__v4 nn__v4_abs(nn__v4 a)
{
    return nn__v4_make(fabsf(a.f[0]), fabsf(a.f[1]), fabsf(a.f[2]), fabsf(a.f[3]));
}
static nn__v4 nn__v4_or(nn__v4 a, nn__v4 b)
{
    uint32_t u[4], w[4];
    int i;
    memcpy(u, a.f, sizeof u);
    memcpy(w, b.f, sizeof w);
    for (i = 0; i < 4; i++) u[i] |= w[i];
    memcpy(a.f, u, sizeof u);
    return a;
}
static nn__v4 nn__v4_pow2i(nn__v4 e)
{
    uint32_t u;
    int i;
    for (i = 0; i < 4; i++) {
        u = (uint32_t)((int)e.f[i] + 127) << 23;
        memcpy(&e.f[i], &u, sizeof u);
    }
    return e;
}
static nn__v4 nn__v4_select_gt(nn__v4 p, nn__v4 q, nn__v4 a, nn__v4 b)
{
    int i;
    for (i = 0; i < 4; i++) a.f[i] = p.f[i] > q.f[i] ? a.f[i] : b.f[i];
    return a;
}
static nn__v4 nn__v4_select_le(nn__v4 p, nn__v4 q, nn__v4 a, nn__v4 b)
{
    int i;
    for (i = 0; i < 4; i++) a.f[i] = p.f[i] <= q.f[i] ? a.f[i] : b.f[i];
    return a;
}
#endif

static nn__v4 nn__v4_neg(nn__v4 a) { return nn__v4_sub(nn__v4_set1(0.0f), a); }

/* The first n (1..4) lanes from / to p; missing lanes load as fill (load_n: 0). */
static nn__v4 nn__v4_load_n_fill(const float *p, int n, float fill)
{
    float t[4];
    if (n >= 4) return nn__v4_load(p);
    t[0] = t[1] = t[2] = t[3] = fill;
    memcpy(t, p, (size_t)n * sizeof(float));
    return nn__v4_load(t);
}

static nn__v4 nn__v4_load_n(const float *p, int n) { return nn__v4_load_n_fill(p, n, 0.0f); }

static void nn__v4_store_n(float *p, nn__v4 v, int n)
{
    float t[4];
    if (n >= 4) {
        nn__v4_store(p, v);
        return;
    }
    nn__v4_store(t, v);
    memcpy(p, t, (size_t)n * sizeof(float));
}

/* Transposes the 4 x 4 matrix whose rows are r[0..3]. */
static void nn__v4_transpose(nn__v4 r[4])
{
    nn__v4 t0 = nn__v4_zip_lo(r[0], r[1]), t1 = nn__v4_zip_lo(r[2], r[3]);
    nn__v4 t2 = nn__v4_zip_hi(r[0], r[1]), t3 = nn__v4_zip_hi(r[2], r[3]);
    r[0] = nn__v4_low(t0, t1);
    r[1] = nn__v4_high(t0, t1);
    r[2] = nn__v4_low(t2, t3);
    r[3] = nn__v4_high(t2, t3);
}

static float nn__v4_hsum(nn__v4 v)
{
    float t[4];
    nn__v4_store(t, v);
    return (t[0] + t[1]) + (t[2] + t[3]);
}

/* ---- Vector loops -----------------------------------------------------------------------
   The element-wise work of the layers, four floats at a time (a last partial group
   through load_n / store_n). Element-wise results are the bits of the scalar expression
   in the comment (same operations, same order, no fused multiply-add); sums run in
   four vectors added in a fixed order, so they do not depend on the SIMD path or on
   the thread count. The arguments of a loop do not overlap unless it says so. */

#define NN__V4_LEFT(n, i) ((n) - (i) < 4 ? (int)((n) - (i)) : 4)

/* sum of x[0..n) */
static float nn__vsum(const float *x, size_t n)
{
    nn__v4 s0 = nn__v4_set1(0.0f), s1 = s0, s2 = s0, s3 = s0;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = nn__v4_add(s0, nn__v4_load(x + i));
        s1 = nn__v4_add(s1, nn__v4_load(x + i + 4));
        s2 = nn__v4_add(s2, nn__v4_load(x + i + 8));
        s3 = nn__v4_add(s3, nn__v4_load(x + i + 12));
    }
    for (; i < n; i += 4) s0 = nn__v4_add(s0, nn__v4_load_n(x + i, NN__V4_LEFT(n, i)));
    return nn__v4_hsum(nn__v4_add(nn__v4_add(s0, s1), nn__v4_add(s2, s3)));
}

/* 1 when every x[0..n) is finite: 0 x is +-0 for those, NaN for NaN and infinity */
static int nn__vfinite(const float *x, size_t n)
{
    nn__v4 zero = nn__v4_set1(0.0f), s0 = zero, s1 = zero, s2 = zero, s3 = zero;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = nn__v4_add(s0, nn__v4_mul(zero, nn__v4_load(x + i)));
        s1 = nn__v4_add(s1, nn__v4_mul(zero, nn__v4_load(x + i + 4)));
        s2 = nn__v4_add(s2, nn__v4_mul(zero, nn__v4_load(x + i + 8)));
        s3 = nn__v4_add(s3, nn__v4_mul(zero, nn__v4_load(x + i + 12)));
    }
    for (; i < n; i += 4) s0 = nn__v4_add(s0, nn__v4_mul(zero, nn__v4_load_n(x + i, NN__V4_LEFT(n, i))));
    return nn__v4_hsum(nn__v4_add(nn__v4_add(s0, s1), nn__v4_add(s2, s3))) == 0.0f;
}

/* sum of (x - mu)^2 */
static float nn__vsum_sq_dev(const float *x, size_t n, float mu)
{
    nn__v4 s0 = nn__v4_set1(0.0f), s1 = s0, m = nn__v4_set1(mu), d0, d1;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        d0 = nn__v4_sub(nn__v4_load(x + i), m);
        d1 = nn__v4_sub(nn__v4_load(x + i + 4), m);
        s0 = nn__v4_add(s0, nn__v4_mul(d0, d0));
        s1 = nn__v4_add(s1, nn__v4_mul(d1, d1));
    }
    for (; i < n; i += 4) {   /* missing lanes load as mu: no deviation */
        d0 = nn__v4_sub(nn__v4_load_n_fill(x + i, NN__V4_LEFT(n, i), mu), m);
        s0 = nn__v4_add(s0, nn__v4_mul(d0, d0));
    }
    return nn__v4_hsum(nn__v4_add(s0, s1));
}

/* y = a (x - mu) + b, then ReLU'd if relu (y <= 0 ? 0 : y: a NaN stays NaN, as
   PyTorch's ReLU); y may be x. */
static void nn__vaffine(float *y, const float *x, size_t n, float a, float mu, float b, int relu)
{
    nn__v4 va = nn__v4_set1(a), vm = nn__v4_set1(mu), vb = nn__v4_set1(b), zero = nn__v4_set1(0.0f), v;
    size_t i;
    for (i = 0; i < n; i += 4) {
        int left = NN__V4_LEFT(n, i);
        v = nn__v4_add(nn__v4_mul(va, nn__v4_sub(nn__v4_load_n(x + i, left), vm)), vb);
        if (relu) v = nn__v4_select_le(v, zero, zero, v);
        nn__v4_store_n(y + i, v, left);
    }
}

/* With g' = g, or g' = (mask <= 0 ? 0 : g) when mask is not NULL (a NaN mask passes g,
   as PyTorch's ReLU backward):
   *sum_g = sum of g',  *sum_g_dev = sum of g' (x - mu). */
static void nn__vsum_grad(const float *g, const float *mask, const float *x, size_t n, float mu,
                          float *sum_g, float *sum_g_dev)
{
    nn__v4 s0 = nn__v4_set1(0.0f), s1 = s0, t0 = s0, t1 = s0, zero = s0, m = nn__v4_set1(mu), g0, g1;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        g0 = nn__v4_load(g + i);
        g1 = nn__v4_load(g + i + 4);
        if (mask) {
            g0 = nn__v4_select_le(nn__v4_load(mask + i), zero, zero, g0);
            g1 = nn__v4_select_le(nn__v4_load(mask + i + 4), zero, zero, g1);
        }
        s0 = nn__v4_add(s0, g0);
        s1 = nn__v4_add(s1, g1);
        t0 = nn__v4_add(t0, nn__v4_mul(g0, nn__v4_sub(nn__v4_load(x + i), m)));
        t1 = nn__v4_add(t1, nn__v4_mul(g1, nn__v4_sub(nn__v4_load(x + i + 4), m)));
    }
    for (; i < n; i += 4) {   /* missing lanes: g' = 0, x = mu */
        int left = NN__V4_LEFT(n, i);
        g0 = nn__v4_load_n(g + i, left);
        if (mask) g0 = nn__v4_select_le(nn__v4_load_n(mask + i, left), zero, zero, g0);
        s0 = nn__v4_add(s0, g0);
        t0 = nn__v4_add(t0, nn__v4_mul(g0, nn__v4_sub(nn__v4_load_n_fill(x + i, left, mu), m)));
    }
    *sum_g = nn__v4_hsum(nn__v4_add(s0, s1));
    *sum_g_dev = nn__v4_hsum(nn__v4_add(t0, t1));
}

/* d = a g' + k (x - mu) + c, g' as in nn__vsum_grad; without x, d = a g' + c (no
   0 (x - mu) term, which would turn a NaN or infinite x into NaN). */
static void nn__vaxpy_dev(float *d, float a, const float *g, const float *mask, const float *x,
                          size_t n, float k, float mu, float c)
{
    nn__v4 va = nn__v4_set1(a), vk = nn__v4_set1(k), vm = nn__v4_set1(mu), vc = nn__v4_set1(c);
    nn__v4 zero = nn__v4_set1(0.0f), gv, t;
    size_t i;
    for (i = 0; i < n; i += 4) {
        int left = NN__V4_LEFT(n, i);
        gv = nn__v4_load_n(g + i, left);
        if (mask) gv = nn__v4_select_le(nn__v4_load_n(mask + i, left), zero, zero, gv);
        t = nn__v4_mul(va, gv);
        if (x) t = nn__v4_add(t, nn__v4_mul(vk, nn__v4_sub(nn__v4_load_n(x + i, left), vm)));
        nn__v4_store_n(d + i, nn__v4_add(t, vc), left);
    }
}

/* The rows of Conv2d's depthwise path, for i < n: d[i] += a s[i stride] (gather),
   d[i stride] += a s[i] (scatter), and the dot product of g[i] and s[i stride]. In
   vectors for stride 1, and for the gather and the dot at stride 2 (even() of two
   loads); multiply, then add, so every d[i] is the scalar loop's on each path. The dot
   sums in 4 lanes, then their sum, then the tail: one order on every path. */
static void nn__vaxpy_gather(float *d, const float *s, size_t stride, int n, float a)
{
    nn__v4 va = nn__v4_set1(a);
    int i = 0;
    if (stride == 1)
        for (; i + 4 <= n; i += 4)
            nn__v4_store(d + i, nn__v4_add(nn__v4_load(d + i), nn__v4_mul(va, nn__v4_load(s + i))));
    else if (stride == 2)   /* reads s[2i .. 2i+7]: 2i+7 stays below the last index 2(n-1) */
        for (; i + 5 <= n; i += 4)
            nn__v4_store(d + i, nn__v4_add(nn__v4_load(d + i),
                                           nn__v4_mul(va, nn__v4_even(nn__v4_load(s + 2 * i), nn__v4_load(s + 2 * i + 4)))));
    for (; i < n; i++) d[i] += a * s[(size_t)i * stride];
}

static void nn__vaxpy_scatter(float *d, size_t stride, const float *s, int n, float a)
{
    nn__v4 va = nn__v4_set1(a);
    int i = 0;
    if (stride == 1)
        for (; i + 4 <= n; i += 4)
            nn__v4_store(d + i, nn__v4_add(nn__v4_load(d + i), nn__v4_mul(va, nn__v4_load(s + i))));
    for (; i < n; i++) d[(size_t)i * stride] += a * s[i];
}

static float nn__vdot_strided(const float *g, const float *s, size_t stride, int n)
{
    nn__v4 acc = nn__v4_set1(0.0f);
    float sum;
    int i = 0;
    if (stride == 1)
        for (; i + 4 <= n; i += 4) acc = nn__v4_add(acc, nn__v4_mul(nn__v4_load(g + i), nn__v4_load(s + i)));
    else if (stride == 2)
        for (; i + 5 <= n; i += 4)
            acc = nn__v4_add(acc, nn__v4_mul(nn__v4_load(g + i),
                                             nn__v4_even(nn__v4_load(s + 2 * i), nn__v4_load(s + 2 * i + 4))));
    sum = nn__v4_hsum(acc);
    for (; i < n; i++) sum += g[i] * s[(size_t)i * stride];
    return sum;
}

/* GELU's pieces on four lanes, written once for every path (so the bits agree):
   erf(z) = z P(z^2) / Q(z^2) for |z| <= 3.92, sign(z) above (erf(3.92) rounds to 1 in
   float); P, Q: a least-squares fit (ours) of erf on [0, 4] with 6 and 5 coefficients
   past Q's leading 1, absolute error below 4e-7 in float. A NaN z stays NaN.
   exp(t) for t <= 0: t = n ln2 + r with n = round(t / ln2) (the 1.5 2^23 trick) and
   |r| <= ln2 / 2 (ln2 in two parts, the first exact times n), e^r by its Taylor series
   to r^7 (relative error below 1e-8 before rounding), times 2^n; 0 below -87.3, where
   e^t is no longer a normal float. */
static nn__v4 nn__v4_erf(nn__v4 z)
{
    static const float p[6] = {1.12837905e+00f, 1.92324204e-01f, 5.29835791e-02f, 3.84531522e-03f,
                               2.86187989e-04f, 2.02697933e-06f};
    static const float q[5] = {5.03774785e-01f, 1.14885881e-01f, 1.51256530e-02f, 1.18117996e-03f,
                               3.79253838e-05f};
    nn__v4 s = nn__v4_mul(z, z), num = nn__v4_set1(p[5]), den = nn__v4_set1(q[4]), one = nn__v4_set1(1.0f);
    int k;
    for (k = 4; k >= 0; k--) num = nn__v4_add(nn__v4_mul(num, s), nn__v4_set1(p[k]));
    for (k = 3; k >= 0; k--) den = nn__v4_add(nn__v4_mul(den, s), nn__v4_set1(q[k]));
    den = nn__v4_add(nn__v4_mul(den, s), one);
    return nn__v4_select_gt(nn__v4_abs(z), nn__v4_set1(3.92f),
                            nn__v4_select_gt(z, nn__v4_set1(0.0f), one, nn__v4_set1(-1.0f)),
                            nn__v4_div(nn__v4_mul(z, num), den));
}

static nn__v4 nn__v4_exp_neg(nn__v4 t)
{
    const nn__v4 magic = nn__v4_set1(12582912.0f), low = nn__v4_set1(-87.3f), zero = nn__v4_set1(0.0f);
    nn__v4 c = nn__v4_select_gt(low, t, low, t), n, r, e;   /* clamped: no 2^n below 2^-126 */
    int k;
    n = nn__v4_sub(nn__v4_add(nn__v4_mul(c, nn__v4_set1(1.44269504f)), magic), magic);
    r = nn__v4_sub(nn__v4_sub(c, nn__v4_mul(n, nn__v4_set1(0.693359375f))), nn__v4_mul(n, nn__v4_set1(-2.12194440e-4f)));
    e = nn__v4_set1(1.0f / 5040.0f);
    for (k = 6; k >= 0; k--) {
        static const float inv_fact[7] = {1.0f, 1.0f, 0.5f, 1.0f / 6.0f, 1.0f / 24.0f, 1.0f / 120.0f, 1.0f / 720.0f};
        e = nn__v4_add(nn__v4_mul(e, r), nn__v4_set1(inv_fact[k]));
    }
    return nn__v4_select_gt(low, t, zero, nn__v4_mul(e, nn__v4_pow2i(n)));
}

/* GELU: y = (0.5 x) (1 + erf(x / sqrt 2));  dx = dy (Phi + (x / sqrt(2 pi)) e^(-x^2 / 2))
   with Phi = 0.5 (1 + erf(x / sqrt 2)). */
static void nn__vgelu(float *y, const float *x, size_t n)
{
    nn__v4 half = nn__v4_set1(0.5f), one = nn__v4_set1(1.0f), v;
    size_t i;
    for (i = 0; i < n; i += 4) {
        int left = NN__V4_LEFT(n, i);
        v = nn__v4_load_n(x + i, left);
        v = nn__v4_mul(nn__v4_mul(half, v), nn__v4_add(one, nn__v4_erf(nn__v4_mul(v, nn__v4_set1(0.7071067811865476f)))));
        nn__v4_store_n(y + i, v, left);
    }
}

static void nn__vgelu_grad(float *dx, const float *x, const float *dy, size_t n)
{
    nn__v4 half = nn__v4_set1(0.5f), one = nn__v4_set1(1.0f), v, cdf, pdf;
    size_t i;
    for (i = 0; i < n; i += 4) {
        int left = NN__V4_LEFT(n, i);
        v = nn__v4_load_n(x + i, left);
        cdf = nn__v4_mul(half, nn__v4_add(one, nn__v4_erf(nn__v4_mul(v, nn__v4_set1(0.7071067811865476f)))));
        pdf = nn__v4_exp_neg(nn__v4_mul(nn__v4_mul(nn__v4_set1(-0.5f), v), v));
        pdf = nn__v4_mul(nn__v4_mul(v, nn__v4_set1(0.3989422804014327f)), pdf);
        nn__v4_store_n(dx + i, nn__v4_mul(nn__v4_load_n(dy + i, left), nn__v4_add(cdf, pdf)), left);
    }
}

/* y = m > 0 ? v : a v  (LeakyReLU as PyTorch: a NaN m picks a v; ReLU with a = 0 is
   nn__vmask_pos: a v would turn -inf into NaN) */
static void nn__vselect_pos(float *y, const float *m, const float *v, size_t n, float a)
{
    nn__v4 va = nn__v4_set1(a), zero = nn__v4_set1(0.0f), vv;
    size_t i;
    for (i = 0; i < n; i += 4) {
        int left = NN__V4_LEFT(n, i);
        vv = nn__v4_load_n(v + i, left);
        nn__v4_store_n(y + i, nn__v4_select_gt(nn__v4_load_n(m + i, left), zero, vv, nn__v4_mul(va, vv)), left);
    }
}

/* y = a + b (y may be a or b) */
static void nn__vadd(float *y, const float *a, const float *b, size_t n)
{
    size_t i;
    for (i = 0; i < n; i += 4) {
        int left = NN__V4_LEFT(n, i);
        nn__v4_store_n(y + i, nn__v4_add(nn__v4_load_n(a + i, left), nn__v4_load_n(b + i, left)), left);
    }
}

/* y = m <= 0 ? 0 : v  (a NaN m passes v: PyTorch's ReLU keeps NaN, and its backward
   passes the gradient where the output is NaN) */
static void nn__vmask_pos(float *y, const float *m, const float *v, size_t n)
{
    nn__v4 zero = nn__v4_set1(0.0f);
    size_t i;
    for (i = 0; i < n; i += 4) {
        int left = NN__V4_LEFT(n, i);
        nn__v4_store_n(y + i, nn__v4_select_le(nn__v4_load_n(m + i, left), zero,
                                               zero, nn__v4_load_n(v + i, left)), left);
    }
}

/* ---- Winograd F(2x2, 3x3) ----------------------------------------------------------
   A 3x3 convolution with stride 1 and padding 1 (a cross-correlation, as in every deep
   learning library) computes each 2x2 block of outputs from the 4x4 input patch
   around it. Winograd's minimal filtering (Lavin & Gray, "Fast Algorithms for
   Convolutional Neural Networks", 2016) does that with 16 multiplications, not 36:

       Y = A^T [ (G g G^T) (.) (B^T d B) ] A        (.) = element-wise product

   with d the 4x4 input patch, g the 3x3 filter, Y the 2x2 output block and

       B^T = | 1  0 -1  0 |      G = | 1    0    0   |      A^T = | 1  1  1  0 |
             | 0  1  1  0 |          | 1/2  1/2  1/2 |            | 0  1 -1 -1 |
             | 0 -1  1  0 |          | 1/2 -1/2  1/2 |
             | 0  1  0 -1 |          | 0    0    1   |

   Why it works, in 1-D (F(2, 3)): with m0 = (d0 - d2) g0, m1 = (d1 + d2)(g0 + g1 + g2)/2,
   m2 = (d2 - d1)(g0 - g1 + g2)/2 and m3 = (d1 - d3) g2, the sums y0 = m0 + m1 + m2 and
   y1 = m1 - m2 - m3 expand to d0 g0 + d1 g1 + d2 g2 and d1 g0 + d2 g1 + d3 g2; the 2-D
   form applies it down the columns, then along the rows.
   The sum over input channels commutes with A, so for each of the 16 positions
   e = 4k + j of the transformed 4x4 tile the layer is one matrix product:

       U_e = (G g G^T)_e    O x C    filter transform (the weights change every step)
       V_e = (B^T d B)_e    C x T    input transform, T = the tiles of all images
       M_e = U_e V_e        O x T    16 GEMMs (2.25x fewer multiply-adds than im2col)
       y   = A^T M A + b             output transform, cropped where H or W is odd

   Backward: every step is linear, so the gradients run the same steps transposed:

       dM_e = (A dY A^T)_e      dU_e = dM_e V_e^T      dg = G^T dU G
       dV_e = U_e^T dM_e        dx  += B dV B^T        (overlapping tiles add up)

   The forward equals the convolution exactly in real arithmetic (with dY zero
   outside the image), so these are its exact gradients. The entries of B, G and A
   are 0, +-1 and +-1/2: each transformed value is a sum of at most 9 terms and the
   rounding error stays a few float eps times the sum of the terms' magnitudes.
   Layout: the rows of X_e (e = 0..15) are ld_e floats apart; within a row, a plane's
   tile (ty, tx) is at ty * tiles_w + tx, tiles_w = (W + 1) / 2. The tile transforms
   take four neighbouring tiles of a tile row at a time (vector lanes = tiles) from
   zero-padded copies of the rows they need. */

#define NN__WINO_MAX_TW 128   /* tiles per row: planes up to 256 wide */
#define NN__WINO_ROW (2 * NN__WINO_MAX_TW + 8)   /* a padded row, with room to read 4 tiles */

/* The 3x3 filters of 4 channels (w + 9c, c = 0..3) as 9 vectors, one per tap. */
static void nn__wino_taps(const float *w, nn__v4 g[9])
{
    int c;
    for (c = 0; c < 4; c++) {
        g[c] = nn__v4_load(w + 9 * c);
        g[4 + c] = nn__v4_load(w + 9 * c + 4);
    }
    nn__v4_transpose(g);
    nn__v4_transpose(g + 4);
    {
        float t[4];
        for (c = 0; c < 4; c++) t[c] = w[9 * c + 8];
        g[8] = nn__v4_load(t);
    }
}

/* U_e[o][c] = (G g G^T)_e for the filters g = w[o][c] (3x3) of every c; U_e at U + e ld_u.
   Four channels at a time, then one at a time (then lanes 1..3 are unused). */
static void nn__wino_filter(const float *w, int C, int o, float *U, size_t ld_u)
{
    const nn__v4 half = nn__v4_set1(0.5f);
    int c, k, b;
    for (c = 0; c < C; c += 4) {
        const float *wc = w + ((size_t)o * C + c) * 9;
        int lanes = C - c < 4 ? C - c : 4;
        nn__v4 g[9], q[4][3];
        float *u = U + (size_t)o * C + c;
        if (lanes == 4) nn__wino_taps(wc, g);
        else {
            float t[9][4] = {{0.0f}};
            int l;
            for (l = 0; l < lanes; l++)
                for (b = 0; b < 9; b++) t[b][l] = wc[9 * l + b];
            for (b = 0; b < 9; b++) g[b] = nn__v4_load(t[b]);
        }
        for (b = 0; b < 3; b++) {   /* G down the columns */
            nn__v4 s = nn__v4_add(g[b], g[6 + b]);
            q[0][b] = g[b];
            q[1][b] = nn__v4_mul(half, nn__v4_add(s, g[3 + b]));
            q[2][b] = nn__v4_mul(half, nn__v4_sub(s, g[3 + b]));
            q[3][b] = g[6 + b];
        }
        for (k = 0; k < 4; k++) {   /* G^T along the rows */
            nn__v4 s = nn__v4_add(q[k][0], q[k][2]);
            nn__v4_store_n(u + (4 * k) * ld_u, q[k][0], lanes);
            nn__v4_store_n(u + (4 * k + 1) * ld_u, nn__v4_mul(half, nn__v4_add(s, q[k][1])), lanes);
            nn__v4_store_n(u + (4 * k + 2) * ld_u, nn__v4_mul(half, nn__v4_sub(s, q[k][1])), lanes);
            nn__v4_store_n(u + (4 * k + 3) * ld_u, q[k][2], lanes);
        }
    }
}

/* dw[o][c] = G^T dU G (3x3) from dU_e[o][c] (the transpose of nn__wino_filter). */
static void nn__wino_filter_grad(const float *dU, size_t ld_u, int C, int o, float *dw)
{
    const nn__v4 half = nn__v4_set1(0.5f);
    int c, a, j, l;
    for (c = 0; c < C; c += 4) {
        const float *x = dU + (size_t)o * C + c;
        int lanes = C - c < 4 ? C - c : 4;
        nn__v4 p[3][4], g[9];
        float *out = dw + ((size_t)o * C + c) * 9, t[4];
        for (j = 0; j < 4; j++) {   /* G^T down the columns */
            nn__v4 x0 = nn__v4_load_n(x + j * ld_u, lanes), x1 = nn__v4_load_n(x + (4 + j) * ld_u, lanes);
            nn__v4 x2 = nn__v4_load_n(x + (8 + j) * ld_u, lanes), x3 = nn__v4_load_n(x + (12 + j) * ld_u, lanes);
            nn__v4 h = nn__v4_mul(half, nn__v4_add(x1, x2));
            p[0][j] = nn__v4_add(x0, h);
            p[1][j] = nn__v4_mul(half, nn__v4_sub(x1, x2));
            p[2][j] = nn__v4_add(h, x3);
        }
        for (a = 0; a < 3; a++) {   /* G along the rows */
            nn__v4 h = nn__v4_mul(half, nn__v4_add(p[a][1], p[a][2]));
            g[3 * a] = nn__v4_add(p[a][0], h);
            g[3 * a + 1] = nn__v4_mul(half, nn__v4_sub(p[a][1], p[a][2]));
            g[3 * a + 2] = nn__v4_add(h, p[a][3]);
        }
        if (lanes == 4) {   /* back to 9 taps per channel */
            nn__v4_transpose(g);
            nn__v4_transpose(g + 4);
            for (l = 0; l < 4; l++) {
                nn__v4_store(out + 9 * l, g[l]);
                nn__v4_store(out + 9 * l + 4, g[4 + l]);
            }
            nn__v4_store(t, g[8]);
            for (l = 0; l < 4; l++) out[9 * l + 8] = t[l];
        } else {
            for (a = 0; a < 9; a++) {
                nn__v4_store(t, g[a]);
                for (l = 0; l < lanes; l++) out[9 * l + a] = t[l];
            }
        }
    }
}

/* Row y of the H x W plane x into row (column q at q + 1), zero outside the plane,
   `width` floats in all. */
static void nn__wino_pad_row(const float *x, int H, int W, int y, float *row, int width)
{
    if (y < 0 || y >= H) {
        memset(row, 0, (size_t)width * sizeof(float));
        return;
    }
    row[0] = 0.0f;
    memcpy(row + 1, x + (size_t)y * W, (size_t)W * sizeof(float));
    memset(row + 1 + W, 0, (size_t)(width - 1 - W) * sizeof(float));
}

/* The four tile transforms, on the tiles of four vector lanes. `count` (1..4) lanes
   hold real tiles; the rows of X_e are ld apart, lane l of X_e at x[e ld + l]. */

/* d: the 4x4 input patches (d[row][column]) -> V_e = (B^T d B)_e. */
static void nn__wino_input_tiles(nn__v4 d[4][4], float *v, size_t ld, int count)
{
    nn__v4 t[4][4];
    int b, k;
    for (b = 0; b < 4; b++) {   /* B^T down the columns: d0 - d2, d1 + d2, d2 - d1, d1 - d3 */
        t[0][b] = nn__v4_sub(d[0][b], d[2][b]);
        t[1][b] = nn__v4_add(d[1][b], d[2][b]);
        t[2][b] = nn__v4_sub(d[2][b], d[1][b]);
        t[3][b] = nn__v4_sub(d[1][b], d[3][b]);
    }
    for (k = 0; k < 4; k++) {   /* and the same along the rows */
        nn__v4_store_n(v + (4 * k) * ld, nn__v4_sub(t[k][0], t[k][2]), count);
        nn__v4_store_n(v + (4 * k + 1) * ld, nn__v4_add(t[k][1], t[k][2]), count);
        nn__v4_store_n(v + (4 * k + 2) * ld, nn__v4_sub(t[k][2], t[k][1]), count);
        nn__v4_store_n(v + (4 * k + 3) * ld, nn__v4_sub(t[k][1], t[k][3]), count);
    }
}

/* M_e -> the 2x2 output blocks y[row][column] = (A^T M A) + bias. */
static void nn__wino_output_tiles(const float *m, size_t ld, int count, float bias, nn__v4 y[2][2])
{
    nn__v4 s[2][4], vb = nn__v4_set1(bias);
    int j;
    for (j = 0; j < 4; j++) {   /* A^T down the columns: m0 + m1 + m2, m1 - m2 - m3 */
        nn__v4 m0 = nn__v4_load_n(m + j * ld, count), m1 = nn__v4_load_n(m + (4 + j) * ld, count);
        nn__v4 m2 = nn__v4_load_n(m + (8 + j) * ld, count), m3 = nn__v4_load_n(m + (12 + j) * ld, count);
        s[0][j] = nn__v4_add(nn__v4_add(m0, m1), m2);
        s[1][j] = nn__v4_sub(nn__v4_sub(m1, m2), m3);
    }
    for (j = 0; j < 2; j++) {   /* and along the rows */
        y[j][0] = nn__v4_add(nn__v4_add(nn__v4_add(s[j][0], s[j][1]), s[j][2]), vb);
        y[j][1] = nn__v4_add(nn__v4_sub(nn__v4_sub(s[j][1], s[j][2]), s[j][3]), vb);
    }
}

/* The 2x2 output gradient blocks g[row][column] -> dM_e = (A dY A^T)_e. A along a row
   (a, b) gives h = (a, a + b, a - b, -b); down the columns, from the rows' h0 and h1:
   (h0, h0 + h1, h0 - h1, -h1). */
static void nn__wino_output_grad_tiles(nn__v4 g[2][2], float *m, size_t ld, int count)
{
    nn__v4 h[2][4];
    int r, j;
    for (r = 0; r < 2; r++) {
        h[r][0] = g[r][0];
        h[r][1] = nn__v4_add(g[r][0], g[r][1]);
        h[r][2] = nn__v4_sub(g[r][0], g[r][1]);
        h[r][3] = nn__v4_neg(g[r][1]);
    }
    for (j = 0; j < 4; j++) {
        nn__v4_store_n(m + j * ld, h[0][j], count);
        nn__v4_store_n(m + (4 + j) * ld, nn__v4_add(h[0][j], h[1][j]), count);
        nn__v4_store_n(m + (8 + j) * ld, nn__v4_sub(h[0][j], h[1][j]), count);
        nn__v4_store_n(m + (12 + j) * ld, nn__v4_neg(h[1][j]), count);
    }
}

/* dV_e -> the 4x4 input gradient blocks dd[row][column] = B dV B^T. B applied to rows
   X0..X3 gives (X0, X1 - X2 + X3, X1 + X2 - X0, -X3): down the columns, then along the
   rows. Lanes past count load as zero, so their blocks are zero. */
static void nn__wino_input_grad_tiles(const float *v, size_t ld, int count, nn__v4 dd[4][4])
{
    nn__v4 R[4][4];
    int r, j;
    for (j = 0; j < 4; j++) {
        nn__v4 x0 = nn__v4_load_n(v + j * ld, count), x1 = nn__v4_load_n(v + (4 + j) * ld, count);
        nn__v4 x2 = nn__v4_load_n(v + (8 + j) * ld, count), x3 = nn__v4_load_n(v + (12 + j) * ld, count);
        R[0][j] = x0;
        R[1][j] = nn__v4_add(nn__v4_sub(x1, x2), x3);
        R[2][j] = nn__v4_sub(nn__v4_add(x1, x2), x0);
        R[3][j] = nn__v4_neg(x3);
    }
    for (r = 0; r < 4; r++) {
        dd[r][0] = R[r][0];
        dd[r][1] = nn__v4_add(nn__v4_sub(R[r][1], R[r][2]), R[r][3]);
        dd[r][2] = nn__v4_sub(nn__v4_add(R[r][1], R[r][2]), R[r][0]);
        dd[r][3] = nn__v4_neg(R[r][3]);
    }
}

/* ---- Whole planes: lanes = four neighbouring tiles of a tile row --------------------
   Tile row ty covers rows 2ty-1 .. 2ty+2 and tile tx columns 2tx-1 .. 2tx+2, i.e.
   padded columns 2tx .. 2tx+3 of a zero-padded row (column q at q + 1): for four tiles,
   the even and odd entries of two overlapping 8-float loads are the patch columns. */

/* V_e = (B^T d B)_e for every tile of the H x W plane x (zero padding of 1). */
static void nn__wino_input(const float *x, int H, int W, float *V, size_t ld_v)
{
    int tw = (W + 1) / 2, th = (H + 1) / 2, width = 2 * nn__round_up(tw, 4) + 4, ty, tx, r;
    float rows[4][NN__WINO_ROW];
    for (ty = 0; ty < th; ty++) {
        for (r = 0; r < 4; r++) nn__wino_pad_row(x, H, W, 2 * ty - 1 + r, rows[r], width);
        for (tx = 0; tx < tw; tx += 4) {
            nn__v4 d[4][4];
            for (r = 0; r < 4; r++) {
                const float *p = rows[r] + 2 * tx;
                nn__v4 a0 = nn__v4_load(p), a1 = nn__v4_load(p + 4);
                nn__v4 b0 = nn__v4_load(p + 2), b1 = nn__v4_load(p + 6);
                d[r][0] = nn__v4_even(a0, a1);
                d[r][1] = nn__v4_odd(a0, a1);
                d[r][2] = nn__v4_even(b0, b1);
                d[r][3] = nn__v4_odd(b0, b1);
            }
            nn__wino_input_tiles(d, V + (size_t)ty * tw + tx, ld_v, tw - tx);
        }
    }
}

/* y = A^T M A + bias for every tile of the H x W plane y; outputs past an odd edge
   are dropped. */
static void nn__wino_output(const float *M, size_t ld_m, int H, int W, float bias, float *y)
{
    int tw = (W + 1) / 2, th = (H + 1) / 2, ty, tx, r;
    for (ty = 0; ty < th; ty++)
        for (tx = 0; tx < tw; tx += 4) {
            nn__v4 out[2][2];
            nn__wino_output_tiles(M + (size_t)ty * tw + tx, ld_m, tw - tx, bias, out);
            for (r = 0; r < 2 && 2 * ty + r < H; r++) {   /* columns 2tx .. 2tx+7 */
                float *row = y + (size_t)(2 * ty + r) * W + 2 * tx;
                int n = W - 2 * tx;
                nn__v4_store_n(row, nn__v4_zip_lo(out[r][0], out[r][1]), n);
                if (n > 4) nn__v4_store_n(row + 4, nn__v4_zip_hi(out[r][0], out[r][1]), n - 4);
            }
        }
}

/* dM = A dY A^T for every tile of the H x W gradient plane dy (the transpose of
   nn__wino_output). */
static void nn__wino_output_grad(const float *dy, int H, int W, float *dM, size_t ld_m)
{
    int tw = (W + 1) / 2, th = (H + 1) / 2, width = 2 * nn__round_up(tw, 4) + 4, ty, tx, r;
    float rows[2][NN__WINO_ROW];
    for (ty = 0; ty < th; ty++) {
        for (r = 0; r < 2; r++) nn__wino_pad_row(dy, H, W, 2 * ty + r, rows[r], width);
        for (tx = 0; tx < tw; tx += 4) {
            nn__v4 g[2][2];
            for (r = 0; r < 2; r++) {   /* padded column 2tx + 1 is column 2tx */
                nn__v4 lo = nn__v4_load(rows[r] + 2 * tx + 1), hi = nn__v4_load(rows[r] + 2 * tx + 5);
                g[r][0] = nn__v4_even(lo, hi);
                g[r][1] = nn__v4_odd(lo, hi);
            }
            nn__wino_output_grad_tiles(g, dM + (size_t)ty * tw + tx, ld_m, tw - tx);
        }
    }
}

/* dx = the sum over tiles of B dV B^T, each 4x4 block added at rows 2ty-1 .. 2ty+2 and
   columns 2tx-1 .. 2tx+2 where they lie inside the H x W plane (the transpose of
   nn__wino_input). The four rows of a tile row are summed in padded row buffers: the
   first two are complete after that tile row and are copied out, the last two carry
   over to the next. */
static void nn__wino_input_grad(const float *dV, size_t ld_v, int H, int W, float *dx)
{
    int tw = (W + 1) / 2, th = (H + 1) / 2, width = 2 * nn__round_up(tw, 4) + 4, ty, tx, r;
    float rows[4][NN__WINO_ROW];
    memset(rows, 0, sizeof rows);
    for (ty = 0; ty < th; ty++) {
        for (tx = 0; tx < tw; tx += 4) {
            nn__v4 dd[4][4];
            nn__wino_input_grad_tiles(dV + (size_t)ty * tw + tx, ld_v, tw - tx, dd);
            for (r = 0; r < 4; r++) {   /* block column s of lane l at padded column 2(tx+l) + s */
                float *p = rows[r] + 2 * tx;
                nn__v4_store(p, nn__v4_add(nn__v4_load(p), nn__v4_zip_lo(dd[r][0], dd[r][1])));
                nn__v4_store(p + 4, nn__v4_add(nn__v4_load(p + 4), nn__v4_zip_hi(dd[r][0], dd[r][1])));
                nn__v4_store(p + 2, nn__v4_add(nn__v4_load(p + 2), nn__v4_zip_lo(dd[r][2], dd[r][3])));
                nn__v4_store(p + 6, nn__v4_add(nn__v4_load(p + 6), nn__v4_zip_hi(dd[r][2], dd[r][3])));
            }
        }
        for (r = 0; r < 2; r++) {   /* rows 2ty-1 and 2ty are complete */
            int y = 2 * ty - 1 + r;
            if (y >= 0 && y < H) memcpy(dx + (size_t)y * W, rows[r] + 1, (size_t)W * sizeof(float));
            memcpy(rows[r], rows[r + 2], (size_t)width * sizeof(float));
            memset(rows[r + 2], 0, (size_t)width * sizeof(float));
        }
    }
    for (r = 0; r < 2; r++) {   /* rows 2th-1 and 2th */
        int y = 2 * th - 1 + r;
        if (y < H) memcpy(dx + (size_t)y * W, rows[r] + 1, (size_t)W * sizeof(float));
    }
}

/* ---- Small planes (H, W <= 4): lanes = the tiles of four images ----------------------
   A plane of at most 2 x 2 tiles leaves most lanes of a tile row empty, so these take
   a channel's planes of (up to) four images at once, x_i at x + i * stride: tile j of
   the group is tile j % T of image j / T, and the images' rows of X_e are consecutive
   (T tiles each). The planes are copied into zero-padded 6 x 8 blocks (column q of row
   y at [y + 1][q + 1]), where each lane loads its patch rows and a transpose turns
   four lanes' rows into the patch columns. */

#define NN__WINO_SMALL 4

typedef float nn__wino_pads[4][6][8];

static void nn__wino_lane(int H, int W, int j, int *image, int *row, int *col)
{
    int tw = (W + 1) / 2, T = (H + 1) / 2 * tw;
    *image = j / T;
    *row = 2 * (j % T / tw);
    *col = 2 * (j % T % tw);
}

static void nn__wino_input_small(const float *x, size_t stride, int images, int H, int W,
                                 float *V, size_t ld_v)
{
    int tiles = images * ((H + 1) / 2) * ((W + 1) / 2), i, y, g, l, a;
    nn__wino_pads pad;
    memset(pad, 0, sizeof pad);
    for (i = 0; i < images; i++)
        for (y = 0; y < H; y++) memcpy(&pad[i][y + 1][1], x + i * stride + (size_t)y * W, (size_t)W * sizeof(float));
    for (g = 0; g < tiles; g += 4) {
        nn__v4 d[4][4];
        for (a = 0; a < 4; a++) {
            nn__v4 r[4];
            for (l = 0; l < 4; l++) {   /* lanes past the last tile repeat it */
                int im, ry, cx;
                nn__wino_lane(H, W, g + l < tiles ? g + l : g, &im, &ry, &cx);
                r[l] = nn__v4_load(&pad[im][ry + a][cx]);
            }
            nn__v4_transpose(r);
            for (l = 0; l < 4; l++) d[a][l] = r[l];
        }
        nn__wino_input_tiles(d, V + g, ld_v, tiles - g);
    }
}

static void nn__wino_output_small(const float *M, size_t ld_m, int images, int H, int W,
                                  float bias, float *y, size_t stride)
{
    int tiles = images * ((H + 1) / 2) * ((W + 1) / 2), g, l;
    for (g = 0; g < tiles; g += 4) {
        nn__v4 out[2][2], q[4];
        float t[4][4];
        nn__wino_output_tiles(M + g, ld_m, tiles - g, bias, out);
        q[0] = out[0][0]; q[1] = out[0][1]; q[2] = out[1][0]; q[3] = out[1][1];
        nn__v4_transpose(q);   /* q[l] = lane l's (y00, y01, y10, y11) */
        for (l = 0; l < 4; l++) nn__v4_store(t[l], q[l]);
        for (l = 0; l < 4 && g + l < tiles; l++) {
            int im, ry, cx;
            float *p;
            nn__wino_lane(H, W, g + l, &im, &ry, &cx);
            p = y + im * stride + (size_t)ry * W + cx;
            p[0] = t[l][0];
            if (cx + 1 < W) p[1] = t[l][1];
            if (ry + 1 < H) {
                p[W] = t[l][2];
                if (cx + 1 < W) p[W + 1] = t[l][3];
            }
        }
    }
}

static void nn__wino_output_grad_small(const float *dy, size_t stride, int images, int H, int W,
                                       float *dM, size_t ld_m)
{
    int tiles = images * ((H + 1) / 2) * ((W + 1) / 2), g, l;
    for (g = 0; g < tiles; g += 4) {
        float t[4][4] = {{0.0f}};
        nn__v4 q[4], gr[2][2];
        for (l = 0; l < 4 && g + l < tiles; l++) {   /* lane l's (g00, g01, g10, g11) */
            int im, ry, cx;
            const float *p;
            nn__wino_lane(H, W, g + l, &im, &ry, &cx);
            p = dy + im * stride + (size_t)ry * W + cx;
            t[l][0] = p[0];
            t[l][1] = cx + 1 < W ? p[1] : 0.0f;
            t[l][2] = ry + 1 < H ? p[W] : 0.0f;
            t[l][3] = ry + 1 < H && cx + 1 < W ? p[W + 1] : 0.0f;
        }
        for (l = 0; l < 4; l++) q[l] = nn__v4_load(t[l]);
        nn__v4_transpose(q);
        gr[0][0] = q[0]; gr[0][1] = q[1]; gr[1][0] = q[2]; gr[1][1] = q[3];
        nn__wino_output_grad_tiles(gr, dM + g, ld_m, tiles - g);
    }
}

static void nn__wino_input_grad_small(const float *dV, size_t ld_v, int images, int H, int W,
                                      float *dx, size_t stride)
{
    int tiles = images * ((H + 1) / 2) * ((W + 1) / 2), i, y, g, l, r;
    nn__wino_pads pad;
    memset(pad, 0, sizeof pad);
    for (g = 0; g < tiles; g += 4) {
        nn__v4 dd[4][4];
        nn__wino_input_grad_tiles(dV + g, ld_v, tiles - g, dd);
        for (r = 0; r < 4; r++) {
            nn__v4_transpose(dd[r]);   /* dd[r][l] = lane l's block row r */
            for (l = 0; l < 4 && g + l < tiles; l++) {
                int im, ry, cx;
                float *p;
                nn__wino_lane(H, W, g + l, &im, &ry, &cx);
                p = &pad[im][ry + r][cx];
                nn__v4_store(p, nn__v4_add(nn__v4_load(p), dd[r][l]));
            }
        }
    }
    for (i = 0; i < images; i++)
        for (y = 0; y < H; y++) memcpy(dx + i * stride + (size_t)y * W, &pad[i][y + 1][1], (size_t)W * sizeof(float));
}

/* ---- int8 kernels ------------------------------------------------------------------
   The products of the quantized layers (QUANTIZED INFERENCE): c[i][j] = sum over p of
   w[i][p] x[j][p], int8 weights in -127..127 (m rows) times uint8 activations in
   0..127 (n rows), both rows kp bytes long, kp a multiple of NN__QK, zero-padded.
   (The layers split larger activations, QUANTIZED INFERENCE.) With k <= NN__QMAX_K
   every sum is exact in int32, so every path gives the bits of
   the scalar reference.
   x86 (the packed kernels below): vpmaddubsw multiplies 32 unsigned by 32 signed bytes
   and adds adjacent pairs into int16 with saturation. Activations below 128 (7-bit, as
   PyTorch's x86 backends reduce their range) and weights within +-127 bound a pair by
   2 * 127 * 127 = 32258 < 32767: it never saturates. vpmaddwd by ones then adds pairs of
   those into int32.
   NEON: activations below 128 are int8 as they are, so both operands are signed:
   sdot (vdotq_s32, the ARMv8.2 dot product: four products into each int32 lane)
   where the CPU has it (getauxval, HWCAP_ASIMDDP on Linux), else vmull_s8 + vmlal_s8
   (a pair of products in int16, the same bound) and vpadalq_s16 into int32.
   NEON: blocks of 4 rows x 2 columns (8 accumulators), then 4 x 1, then 1 x 1. */

#define NN__QK 32            /* the padding of a row of the products */
#define NN__QMAX 127         /* the largest activation level (7 bits) */
#define NN__QMAX_K 16384     /* the longest row: |sum| <= 16384 * 255 * 127 < 2^29 */

typedef void (*nn__qgemm_fn)(int m, int n, int kp, const int8_t *w, const uint8_t *x,
                             int32_t *c, int ldc);

/* Set by the tests: 1 forces the scalar kernel (which takes any uint8), 2 the NEON
   kernel without sdot. */
static int nn__qgemm_force;

static void nn__qgemm_scalar(int m, int n, int kp, const int8_t *w, const uint8_t *x, int32_t *c,
                             int ldc)
{
    int i, j, p;
    for (i = 0; i < m; i++)
        for (j = 0; j < n; j++) {
            const int8_t *wi = w + (size_t)i * kp;
            const uint8_t *xj = x + (size_t)j * kp;
            int32_t sum = 0;
            for (p = 0; p < kp; p++) sum += (int32_t)wi[p] * (int32_t)xj[p];
            c[(size_t)i * ldc + j] = sum;
        }
}


/* The packed kernels: a block of output channels (the lanes) against n columns (an
   output pixel of a sample, or a Linear's sample), requantized in registers and stored.
   The weights, packed once (nn__qop_prepare), are panels of 16 channels, 4-byte groups
   along k: panel[k / 4][16 channels][4 bytes], the panels of a group an even count
   (zero-padded); a column is an im2row row of kp bytes, as for the kernels above. Per
   4-byte group a column's 4 bytes are broadcast to every lane and multiplied with the
   panel's: vpdpbusd (AVX-512 VNNI on zmm: 2 panels x 8 columns, 16 accumulators; AVX-VNNI
   on ymm: 1 panel x 6 columns) adds the 4 products of unsigned by signed bytes into each
   int32 lane exactly, so those take any byte. AVX2 (1 panel x 4 columns) forms them with
   vpmaddubsw + vpmaddwd, exact for bytes below 128 (the bound above); a block whose
   columns hold larger ones (split) takes each as lo + 128 hi, lo = x & 127, hi = x >> 7,
   two exact products. Each lane's sum is the scalar kernel's, every path the same bits. */
typedef struct nn__qblock {
    int kp, n, rows, c0;         /* column bytes, columns, channels (lanes), the first one's index */
    int split, to_float, zp, lo; /* split: AVX2's levels above 127; requantization: zero point, floor */
    const int8_t *w;             /* ceil(rows / 16) panels (an even count) of kp / 4 x 64 bytes */
    const int32_t *par;          /* a panel's 64 words: bias_eff, mult, shift, deq (float) x 16 */
    const uint8_t *x;            /* column j at x + j kp */
    uint8_t *y;                  /* channel c0 + l of column j: y[at[j] + (c0 + l) cs] */
    float *yf;                   /* the same for a float output */
    const size_t *at;
    size_t cs;
} nn__qblock;

typedef void (*nn__qkern_fn)(const nn__qblock *b);

#define NN__QPAD_COLS 12   /* the columns a kernel may read past the last one */

#ifdef NN__X86
#include <cpuid.h>

static int32_t nn__ld32(const uint8_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* Columns j0 .. j0 + nv - 1 of a tile (t8 or tf, 32 lanes a column, lanes from lane0 of
   the block) into the output. */
static void nn__qscatter(const nn__qblock *b, int j0, int nv, int lane0, const uint8_t *t8, const float *tf)
{
    int j, l, lanes = b->rows - lane0 < 32 ? b->rows - lane0 : 32;
    for (j = 0; j < nv; j++) {
        size_t at = b->at[j0 + j] + (size_t)(b->c0 + lane0) * b->cs;
        if (b->to_float)
            for (l = 0; l < lanes; l++) b->yf[at + (size_t)l * b->cs] = tf[j * 32 + l];
        else if (b->cs == 1) memcpy(b->y + at, t8 + j * 32, (size_t)lanes);
        else
            for (l = 0; l < lanes; l++) b->y[at + (size_t)l * b->cs] = t8[j * 32 + l];
    }
}

/* nn__qround on 8 lanes, then the zero point added and clamped to lo..255: |v| times the
   multiplier in 64 bits (even and odd lanes), plus half, shifted, capped at 2^30, the
   sign of v put back. */
__attribute__((target("avx2")))
static inline __m256i nn__qreq8(__m256i acc, const int32_t *par, __m256i zp, __m256i lo)
{
    const __m256i one = _mm256_set1_epi64x(1), cap = _mm256_set1_epi64x(1 << 30);
    __m256i v = _mm256_add_epi32(acc, _mm256_loadu_si256((const __m256i *)par));
    __m256i m = _mm256_loadu_si256((const __m256i *)(par + 16)), s = _mm256_loadu_si256((const __m256i *)(par + 32));
    __m256i a = _mm256_abs_epi32(v), se = _mm256_and_si256(s, _mm256_set1_epi64x(0xffffffff));
    __m256i so = _mm256_srli_epi64(s, 32), r;
    __m256i pe = _mm256_mul_epu32(a, m), po = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), _mm256_srli_epi64(m, 32));
    pe = _mm256_srlv_epi64(_mm256_add_epi64(pe, _mm256_sllv_epi64(one, _mm256_sub_epi64(se, one))), se);
    po = _mm256_srlv_epi64(_mm256_add_epi64(po, _mm256_sllv_epi64(one, _mm256_sub_epi64(so, one))), so);
    pe = _mm256_blendv_epi8(pe, cap, _mm256_cmpgt_epi64(pe, cap));
    po = _mm256_blendv_epi8(po, cap, _mm256_cmpgt_epi64(po, cap));
    r = _mm256_sign_epi32(_mm256_blend_epi32(pe, _mm256_slli_epi64(po, 32), 0xAA), v);
    return _mm256_min_epi32(_mm256_max_epi32(_mm256_add_epi32(r, zp), lo), _mm256_set1_epi32(255));
}

/* One column of 16 lanes (a0: lanes 0-7, a1: 8-15) of panel par into t8 or tf. */
__attribute__((target("avx2")))
static inline void nn__qout16(const nn__qblock *b, __m256i a0, __m256i a1, const int32_t *par, uint8_t *t8,
                              float *tf)
{
    if (b->to_float) {
        __m256 d0 = _mm256_loadu_ps((const float *)(par + 48)), d1 = _mm256_loadu_ps((const float *)(par + 56));
        a0 = _mm256_add_epi32(a0, _mm256_loadu_si256((const __m256i *)par));
        a1 = _mm256_add_epi32(a1, _mm256_loadu_si256((const __m256i *)(par + 8)));
        _mm256_storeu_ps(tf, _mm256_mul_ps(_mm256_cvtepi32_ps(a0), d0));
        _mm256_storeu_ps(tf + 8, _mm256_mul_ps(_mm256_cvtepi32_ps(a1), d1));
    } else {
        __m256i zp = _mm256_set1_epi32(b->zp), lo = _mm256_set1_epi32(b->lo);
        __m256i p = _mm256_packus_epi32(nn__qreq8(a0, par, zp, lo), nn__qreq8(a1, par + 8, zp, lo));
        p = _mm256_permute4x64_epi64(p, 0xD8);
        _mm_storeu_si128((__m128i *)t8, _mm_packus_epi16(_mm256_castsi256_si128(p), _mm256_extracti128_si256(p, 1)));
    }
}

/* The int32 sums of 4 products of x's unsigned bytes (< 128) by w's signed ones. */
__attribute__((target("avx2")))
static inline __m256i nn__qmac_avx2(__m256i acc, __m256i x, __m256i w)
{
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(x, w), _mm256_set1_epi16(1)));
}

/* The same for any unsigned bytes: x = lo + 128 hi. */
__attribute__((target("avx2")))
static inline __m256i nn__qmac_avx2_split(__m256i acc, __m256i x, __m256i w)
{
    __m256i lo = _mm256_and_si256(x, _mm256_set1_epi8(127));
    __m256i hi = _mm256_and_si256(_mm256_srli_epi16(x, 7), _mm256_set1_epi8(1));
    acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(lo, w), _mm256_set1_epi16(1)));
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(hi, w), _mm256_set1_epi16(128)));
}

__attribute__((target("avxvnni")))
static inline __m256i nn__qmac_avxvnni(__m256i acc, __m256i x, __m256i w)
{
    return _mm256_dpbusd_avx_epi32(acc, x, w);
}

/* The accumulators of a kernel, one pair a column, named (arrays of vectors left to
   the compiler came out as register copies and spills). */
#define NN__QREP4(X, A) X(0, A) X(1, A) X(2, A) X(3, A)
#define NN__QREP6(X, A) NN__QREP4(X, A) X(4, A) X(5, A)
#define NN__QREP8(X, A) NN__QREP6(X, A) X(6, A) X(7, A)
#define NN__QREP12(X, A) NN__QREP8(X, A) X(8, A) X(9, A) X(10, A) X(11, A)
#define NN__QY_ZERO(j, A) __m256i c0##j = _mm256_setzero_si256(), c1##j = c0##j;
#define NN__QY_MAC(j, MAC)                                                                    \
    { __m256i xb = _mm256_set1_epi32(nn__ld32(xa + (size_t)(j) * b->kp));                    \
      c0##j = MAC(c0##j, xb, w0); c1##j = MAC(c1##j, xb, w1); }
#define NN__QY_OUT(j, A)                                                                      \
    if (j < nv) nn__qout16(b, c0##j, c1##j, b->par + (size_t)panel * 64, t8 + j * 32, tf + j * 32);
#define NN__QZ_ZERO(j, A) __m512i c0##j = _mm512_setzero_si512(), c1##j = c0##j;
#define NN__QZ_MAC(j, A)                                                                      \
    { __m512i xb = _mm512_set1_epi32(nn__ld32(xa + (size_t)(j) * b->kp));                    \
      c0##j = _mm512_dpbusd_epi32(c0##j, xb, v0); c1##j = _mm512_dpbusd_epi32(c1##j, xb, v1); }
/* (through memory: g++ warns on the undefined operand of _mm512_extracti64x4_epi64) */
#define NN__QZ_OUT(j, A)                                                                      \
    if (j < nv) {                                                                             \
        _mm512_storeu_si512((void *)acc, c0##j);                                              \
        _mm512_storeu_si512((void *)(acc + 16), c1##j);                                       \
        nn__qout16(b, _mm256_loadu_si256((const __m256i *)acc), _mm256_loadu_si256((const __m256i *)(acc + 8)), \
                   par, t8 + j * 32, tf + j * 32);                                            \
        if (two) nn__qout16(b, _mm256_loadu_si256((const __m256i *)(acc + 16)),               \
                            _mm256_loadu_si256((const __m256i *)(acc + 24)), par + 64, t8 + j * 32 + 16, \
                            tf + j * 32 + 16);                                                \
    }

/* A ymm kernel: panel by panel, NC columns at a time (past n the columns are whatever
   the buffer holds there, not stored: it has NN__QPAD_COLS columns more). */
#define NN__QKERN_YMM(NAME, TARGET, NC, REP, MAC)                                             \
    TARGET static void NAME(const nn__qblock *b)                                              \
    {                                                                                         \
        int kg = b->kp / 4, panel, j0, p;                                                     \
        uint8_t t8[NC * 32];                                                                  \
        float tf[NC * 32];                                                                    \
        for (panel = 0; panel * 16 < b->rows; panel++) {                                      \
            const int8_t *w = b->w + (size_t)panel * kg * 64;                                 \
            for (j0 = 0; j0 < b->n; j0 += NC) {                                               \
                const uint8_t *x0 = b->x + (size_t)j0 * b->kp;                                \
                int nv = b->n - j0 < NC ? b->n - j0 : NC;                                     \
                REP(NN__QY_ZERO, 0)                                                           \
                for (p = 0; p < kg; p++) {                                                    \
                    const uint8_t *xa = x0 + 4 * p;                                           \
                    __m256i w0 = _mm256_loadu_si256((const __m256i *)(w + (size_t)p * 64));   \
                    __m256i w1 = _mm256_loadu_si256((const __m256i *)(w + (size_t)p * 64 + 32)); \
                    REP(NN__QY_MAC, MAC)                                                      \
                }                                                                             \
                REP(NN__QY_OUT, 0)                                                            \
                nn__qscatter(b, j0, nv, panel * 16, t8, tf);                                  \
            }                                                                                 \
        }                                                                                     \
    }

NN__QKERN_YMM(nn__qk_avx2_plain, __attribute__((target("avx2"))), 4, NN__QREP4, nn__qmac_avx2)
NN__QKERN_YMM(nn__qk_avx2_split, __attribute__((target("avx2"))), 4, NN__QREP4, nn__qmac_avx2_split)
NN__QKERN_YMM(nn__qk_avxvnni, __attribute__((target("avx2,avxvnni"))), 6, NN__QREP6, nn__qmac_avxvnni)

static void nn__qk_avx2(const nn__qblock *b)
{
    if (b->split) nn__qk_avx2_split(b);
    else nn__qk_avx2_plain(b);
}

/* AVX-512 VNNI: a tile of two panels (32 channels, from panel 2 pair) x NC columns from
   j0, 2 NC zmm accumulators. */
#define NN__QTILE_ZMM(NAME, NC, REP)                                                          \
    __attribute__((target("avx2,avx512f,avx512vnni")))                                        \
    static void NAME(const nn__qblock *b, int pair, int j0)                                   \
    {                                                                                         \
        int kg = b->kp / 4, p, nv = b->n - j0 < NC ? b->n - j0 : NC;                          \
        int two = b->rows > pair * 32 + 16;                                                   \
        uint8_t t8[NC * 32];                                                                  \
        float tf[NC * 32];                                                                    \
        int32_t acc[32];                                                                      \
        const int8_t *w = b->w + (size_t)pair * 2 * kg * 64, *w1 = w + (size_t)kg * 64;       \
        const int32_t *par = b->par + (size_t)pair * 128;                                     \
        const uint8_t *x0 = b->x + (size_t)j0 * b->kp;                                        \
        REP(NN__QZ_ZERO, 0)                                                                   \
        for (p = 0; p < kg; p++) {                                                            \
            const uint8_t *xa = x0 + 4 * p;                                                   \
            __m512i v0 = _mm512_loadu_si512((const void *)(w + (size_t)p * 64));              \
            __m512i v1 = _mm512_loadu_si512((const void *)(w1 + (size_t)p * 64));             \
            REP(NN__QZ_MAC, 0)                                                                \
        }                                                                                     \
        REP(NN__QZ_OUT, 0)                                                                    \
        nn__qscatter(b, j0, nv, pair * 32, t8, tf);                                           \
    }

NN__QTILE_ZMM(nn__qtile_avx512_4, 4, NN__QREP4)
NN__QTILE_ZMM(nn__qtile_avx512_8, 8, NN__QREP8)
NN__QTILE_ZMM(nn__qtile_avx512_12, 12, NN__QREP12)

/* Pair by pair (its weights stay in the cache), tiles of 12 columns, the last one of 4,
   8 or 12. */
static void nn__qk_avx512(const nn__qblock *b)
{
    int pair, j0;
    for (pair = 0; pair * 32 < b->rows; pair++) {
        for (j0 = 0; j0 + 12 <= b->n; j0 += 12) nn__qtile_avx512_12(b, pair, j0);
        if (b->n - j0 > 8) nn__qtile_avx512_12(b, pair, j0);
        else if (b->n - j0 > 4) nn__qtile_avx512_8(b, pair, j0);
        else if (b->n - j0 > 0) nn__qtile_avx512_4(b, pair, j0);
    }
}

/* 1 AVX2, 2 AVX-VNNI, 3 AVX-512 VNNI (CPUID, and the OS saving the zmm state), or 0. */
static int nn__qisa(void)
{
    unsigned a, b, c, d, xlo, xhi, isa = 0;
    if (!__builtin_cpu_supports("avx2")) return 0;
    isa = 1;
    if (__get_cpuid_count(7, 1, &a, &b, &c, &d) && (a >> 4 & 1)) isa = 2;
    if (__get_cpuid_count(7, 0, &a, &b, &c, &d) && (b >> 16 & 1) && (c >> 11 & 1)) {
        __asm__("xgetbv" : "=a"(xlo), "=d"(xhi) : "c"(0));
        (void)xhi;
        if ((xlo & 0xe6) == 0xe6) isa = 3;
    }
    return (int)isa;
}
#else
static int nn__qisa(void) { return 0; }
#endif /* NN__X86 */

#ifdef NN__NEON
#if defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif
#endif
/* sdot for one function, so that the header still builds for plain armv8-a: GCC's
   intrinsic under its target attribute; clang before 16 declares the intrinsic only
   when the whole file targets the extension, so there the instruction is written out. */
#if defined(__clang__)
#define NN__DOTPROD __attribute__((target("dotprod")))
#if defined(__ARM_FEATURE_DOTPROD)
#define nn__sdot vdotq_s32
#else
NN__DOTPROD static int32x4_t nn__sdot(int32x4_t acc, int8x16_t a, int8x16_t b)
{
    __asm__("sdot %0.4s, %1.16b, %2.16b" : "+w"(acc) : "w"(a), "w"(b));
    return acc;
}
#endif
#else
#define NN__DOTPROD __attribute__((target("arch=armv8.2-a+dotprod")))
#define nn__sdot vdotq_s32
#endif

/* The blocked loops of both NEON kernels around MAC(acc, w16, x16). */
#define NN__QGEMM_NEON(MAC)                                                                   \
    int i = 0, j, p, r;                                                                       \
    for (; i + 4 <= m; i += 4) {                                                              \
        const int8_t *w0 = w + (size_t)i * kp;                                                \
        for (j = 0; j + 2 <= n; j += 2) {                                                     \
            const int8_t *x0 = (const int8_t *)x + (size_t)j * kp, *x1 = x0 + kp;             \
            int32x4_t a[4][2];                                                                \
            for (r = 0; r < 4; r++) a[r][0] = a[r][1] = vdupq_n_s32(0);                       \
            for (p = 0; p < kp; p += 16) {                                                    \
                int8x16_t u0 = vld1q_s8(x0 + p), u1 = vld1q_s8(x1 + p);                       \
                for (r = 0; r < 4; r++) {                                                     \
                    int8x16_t v = vld1q_s8(w0 + (size_t)r * kp + p);                          \
                    a[r][0] = MAC(a[r][0], v, u0);                                            \
                    a[r][1] = MAC(a[r][1], v, u1);                                            \
                }                                                                             \
            }                                                                                 \
            for (r = 0; r < 4; r++) {                                                         \
                c[(size_t)(i + r) * ldc + j] = vaddvq_s32(a[r][0]);                           \
                c[(size_t)(i + r) * ldc + j + 1] = vaddvq_s32(a[r][1]);                       \
            }                                                                                 \
        }                                                                                     \
        for (; j < n; j++) {                                                                  \
            const int8_t *x0 = (const int8_t *)x + (size_t)j * kp;                            \
            int32x4_t a[4];                                                                   \
            for (r = 0; r < 4; r++) a[r] = vdupq_n_s32(0);                                    \
            for (p = 0; p < kp; p += 16) {                                                    \
                int8x16_t u0 = vld1q_s8(x0 + p);                                              \
                for (r = 0; r < 4; r++) a[r] = MAC(a[r], vld1q_s8(w0 + (size_t)r * kp + p), u0); \
            }                                                                                 \
            for (r = 0; r < 4; r++) c[(size_t)(i + r) * ldc + j] = vaddvq_s32(a[r]);          \
        }                                                                                     \
    }                                                                                         \
    for (; i < m; i++)                                                                        \
        for (j = 0; j < n; j++) {                                                             \
            const int8_t *w0 = w + (size_t)i * kp, *x0 = (const int8_t *)x + (size_t)j * kp;  \
            int32x4_t a0 = vdupq_n_s32(0);                                                    \
            for (p = 0; p < kp; p += 16) a0 = MAC(a0, vld1q_s8(w0 + p), vld1q_s8(x0 + p));    \
            c[(size_t)i * ldc + j] = vaddvq_s32(a0);                                          \
        }

static int32x4_t nn__qmac_neon(int32x4_t acc, int8x16_t w, int8x16_t x)
{
    int16x8_t prod = vmull_s8(vget_low_s8(w), vget_low_s8(x));
    prod = vmlal_s8(prod, vget_high_s8(w), vget_high_s8(x));
    return vpadalq_s16(acc, prod);
}

static void nn__qgemm_neon(int m, int n, int kp, const int8_t *w, const uint8_t *x, int32_t *c, int ldc)
{
    NN__QGEMM_NEON(nn__qmac_neon)
}

NN__DOTPROD
static void nn__qgemm_sdot(int m, int n, int kp, const int8_t *w, const uint8_t *x, int32_t *c, int ldc)
{
    NN__QGEMM_NEON(nn__sdot)
}

static int nn__have_dotprod(void)
{
#if defined(__ARM_FEATURE_DOTPROD)
    return 1;
#elif defined(__linux__)
    return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
#else
    return 0;
#endif
}
#endif /* NN__NEON */

/* The int8 product kernel for this CPU and its name (on x86 the packed kernels below
   take the products; this one is the scalar reference). */
static nn__qgemm_fn nn__qgemm_pick(const char **name)
{
    const char *dummy;
    if (!name) name = &dummy;
    *name = "scalar";
    if (nn__qgemm_force == 1) return nn__qgemm_scalar;
#if defined(NN__NEON)
    if (nn__qgemm_force != 2 && nn__have_dotprod()) { *name = "neon-sdot"; return nn__qgemm_sdot; }
    *name = "neon";
    return nn__qgemm_neon;
#endif
    return nn__qgemm_scalar;
}

/* The packed kernel for isa (nn__qisa) and its name, or NULL where there is none: then
   the kernel above takes the products. The tests' nn__qgemm_force: 1 none (scalar),
   3 AVX2, 4 AVX-VNNI at most. */
static nn__qkern_fn nn__qkern_pick(int isa, const char **name)
{
    const char *dummy;
    if (!name) name = &dummy;
    *name = "none";
#ifdef NN__X86
    if (nn__qgemm_force == 1) return NULL;
    if (nn__qgemm_force == 3 && isa > 1) isa = 1;
    if (nn__qgemm_force == 4 && isa > 2) isa = 2;
    if (isa == 3) { *name = "avx512-vnni"; return nn__qk_avx512; }
    if (isa == 2) { *name = "avx-vnni"; return nn__qk_avxvnni; }
    if (isa == 1) { *name = "avx2"; return nn__qk_avx2; }
#else
    (void)isa;
#endif
    return NULL;
}

/* Requantization: round(acc * M) by a fixed-point multiplier, M = mult * 2^-shift with
   mult in [2^30, 2^31) (or 0) and shift in 1..62, rounding half away from zero:
   round(acc * mult / 2^shift) computed exactly in 64 bits (|acc * mult| < 2^62), then
   saturated to +-2^30 (a zero point added to it stays in int32; the levels clamp it). */
static int32_t nn__qround(int32_t acc, int32_t mult, int shift)
{
    int64_t prod = (int64_t)acc * mult, half = (int64_t)1 << (shift - 1);
    int64_t r = prod >= 0 ? (prod + half) >> shift : -((-prod + half) >> shift);
    return (int32_t)(r > (1 << 30) ? (1 << 30) : r < -(1 << 30) ? -(1 << 30) : r);
}

/* mult and shift of a real multiplier M > 0: M = f 2^e with f in [0.5, 1), mult =
   round(f 2^31), shift = 31 - e. An M below 2^-32 rounds every int32 to 0 (mult 0);
   M >= 2^30 has no shift (0 returned, else 1). */
static int nn__qmultiplier(double M, int32_t *mult, int *shift)
{
    int e;
    double f = frexp(M, &e);
    int64_t q = (int64_t)floor(f * 2147483648.0 + 0.5);
    if (!(M > 0.0) || M >= 1073741824.0) return 0;
    if (q == (int64_t)1 << 31) { q >>= 1; e++; }
    if (31 - e > 62) { *mult = 0; *shift = 1; return 1; }
    *mult = (int32_t)q;
    *shift = 31 - e;
    return 1;
}

/* =================================================================================
   LAYERS
   ================================================================================= */

/* A layer's entry in the plan of its net (made by nn_build, remade by
   nn_inference_only; the NETWORKS section says how). The tensors are ids into the
   net's tensor table: NN__T_INPUT is the input of the forward, NN__T_DOUT the
   gradient given to nn_backward, NN__T_NONE none. */
#define NN__T_NONE  (-1)
#define NN__T_INPUT 0
#define NN__T_DOUT  1

typedef struct nn__lplan {
    int    x, y;             /* its input and output (a view: y = x) */
    int    x2;               /* NN_BLOCK_END: the main path's output (x: the shortcut's) */
    int    dx, dy;           /* the gradient it writes for its input (NN__T_NONE: not
                                needed) and the gradient of its output it reads */
    int    dy2;              /* NN_BLOCK: the gradient through the shortcut (dy: main) */
    int    work;             /* its workspace (NN__T_NONE: none) */
    size_t work_size;        /* floats, set by setup() */
    int    run;              /* 0: no forward or backward of its own (a view, a mark,
                                a ReLU that the BatchNorm before it applies) */
    int    up;               /* a layer before it in the data flow has parameters, or
                                nn_set_input_grad asked: it needs its input gradient
                                (NN_SHORTCUT: at the end of the main path) */
    int    block;            /* NN_BLOCK: its NN_BLOCK_END; the other marks: their NN_BLOCK */
    int    shortcut;         /* NN_BLOCK: its NN_SHORTCUT, -1 for none */
    int    relu;             /* BatchNorm: it applies the ReLU after it (fused) */
    int    winograd;         /* Conv2d: set by setup() when it takes the Winograd path */
    int    wino_skip;        /* set by its forward when the input holds a NaN or an
                                infinity: that batch goes the im2col way (Winograd's
                                sums would turn an infinity into NaN) */
} nn__lplan;

/* The tensors of a plan: their sizes and offsets in floats, and their pointers. */
typedef struct nn__tplan {
    size_t *size, *at;
    float **ptr;
    int     count, loss_grad;
    size_t  floats;          /* the arena; SIZE_MAX when it would not fit */
} nn__tplan;

/* What a layer's forward and backward read besides their arguments: their own plan
   entry (path choices), their workspace and what the net shares. Made per call. */
typedef struct nn__run {
    nn__lplan *p;            /* the layer's plan entry */
    float    *work;          /* its workspace, p->work_size floats */
    float    *scratch;       /* shared by all layers within one forward or backward */
    int       max_batch;     /* the batch the buffers are sized for */
    int       training;
    int       inference;     /* nn_inference_only: no backward will read this forward */
    nn_rng   *rng;           /* dropout masks */
    nn_net   *sync;          /* BatchNorm: the net whose hook sums its statistics
                                (nn_set_sync_batchnorm), NULL: statistics of its own batch */
} nn__run;

/* A layer kind is a table of four functions. setup() checks the input shape, sets the
   output shape, declares parameters and the workspace size (nn__plan_of(net, L));
   init() sets PyTorch's default initial values; forward() and backward() work on a
   batch of n samples. backward() OVERWRITES the parameter gradients and writes dx
   unless it is NULL (the first layer's input gradient is only computed when asked
   for). A kind without forward is a view (Flatten): its output is its input. */
typedef struct nn__layer_ops {
    nn_status (*setup)(nn_net *net, nn_layer *L);
    void (*init)(nn_layer *L, nn_rng *rng);
    void (*forward)(const nn__run *r, nn_layer *L, const float *x, float *y, int n);
    void (*backward)(const nn__run *r, nn_layer *L, const float *x, const float *y,
                     const float *dy, float *dx, int n);
} nn__layer_ops;

typedef struct nn__qnet nn__qnet;   /* QUANTIZED INFERENCE */
static void nn__qnet_free(nn__qnet *q);
static const float *nn__qforward(nn_net *net, const float *x, int n);

struct nn_net {
    nn_shape  input;
    nn_layer *layers;
    int       num_layers, layer_capacity;
    nn_param *params;              /* every layer's parameters and buffers, in order */
    int       num_params;
    int       max_batch, built, training, want_input_grad;
    nn__lplan *plan;               /* one entry per layer (num_layers) */
    nn__tplan tp;                  /* the plan's tensors: ptr[0] the input of the last
                                      forward, ptr[1] the gradient of the last backward,
                                      the others in the arena */
    float    *arena;               /* every activation, gradient and workspace */
    int       inference;           /* nn_inference_only: planned without gradients */
    int       batch;               /* samples in the last forward; 0: none since the build */
    int       backward_done;       /* nn_backward ran since the build */
    const float *x;                /* input of the last forward */
    float    *loss_grad;           /* dLoss/dOutput scratch of nn_train_step (in the arena) */
    float    *scratch;             /* shared by layers, used within one forward or backward */
    size_t    scratch_size;
    nn_rng    rng;                 /* dropout masks */
    long      train_batches;       /* forwards in training mode (num_batches_tracked) */
    long      builds;              /* nn_build calls: an optimiser made before the last is stale */
    int       check_input;         /* nn_set_check_input: nn_train_step, nn_evaluate check x */
    float     label_smoothing;     /* nn_set_label_smoothing: nn_train_step's eps */
    nn_preprocess_kind preprocess;
    float     preprocess_scale;
    float    *preprocess_mean, *preprocess_std;
    char     *class_names;         /* count names, each NUL-terminated, back to back */
    int       num_class_names;
    nn_allreduce_fn allreduce;     /* nn_set_allreduce: sums across the processes */
    void     *allreduce_ctx;
    int       world_size, sync_bn; /* sync_bn: nn_set_sync_batchnorm */
    float    *bucket;              /* the gradient buckets' staging buffer */
    size_t    bucket_size;         /* its floats */
    int       sync_failed;         /* a BatchNorm's hook failed in this forward / backward */
    nn__qnet *q;                   /* an int8 net (QUANTIZED INFERENCE), else NULL */
};

static nn__layer_ops const *nn__ops(nn_layer_kind kind);

static nn__lplan *nn__plan_of(nn_net *net, const nn_layer *L) { return &net->plan[L - net->layers]; }

/* The longest suffix a parameter name gets: ".num_batches_tracked" (BatchNorm's
   counter in a model file), longer than ".running_mean". */
#define NN__LONGEST_SUFFIX 20

/* Declares a parameter (or a buffer when learnable is 0) named "<layer>.<name>". */
static nn_param *nn__declare(nn_net *net, nn_layer *L, const char *name, int learnable,
                             int ndim, int d0, int d1, int d2, int d3)
{
    nn_param *p = &net->params[net->num_params++];
    int dims[4], i;
    dims[0] = d0; dims[1] = d1; dims[2] = d2; dims[3] = d3;
    memset(p, 0, sizeof *p);
    if (L->name[0])   /* nn_add checked that the name leaves room for the suffix */
        snprintf(p->name, sizeof p->name, "%.*s.%s", NN_MAX_NAME - 1 - NN__LONGEST_SUFFIX, L->name, name);
    else snprintf(p->name, sizeof p->name, "%d.%s", (int)(L - net->layers), name);
    p->ndim = ndim;
    p->size = 1;
    for (i = 0; i < ndim; i++) {   /* SIZE_MAX on overflow: nn_build then refuses it */
        p->shape[i] = dims[i];
        if (!nn__mul_ok(p->size, (size_t)dims[i], &p->size)) p->size = SIZE_MAX;
    }
    p->learnable = learnable;
    return p;
}

/* A layer whose ops have no forward is a view (Flatten): in the plan its output is its
   input and its input gradient the gradient of its output. */
static int nn__is_view(const nn_layer *L)
{
    const nn__layer_ops *ops = nn__ops(L->desc.kind);
    return ops && !ops->forward;
}

/* U(-bound, bound) with bound = 1/sqrt(fan_in): PyTorch's default for Linear and
   Conv2d weights (kaiming_uniform with a = sqrt(5)) and biases. */
static void nn__init_fan_in(nn_layer *L, nn_rng *rng, size_t fan_in)
{
    float bound = 1.0f / sqrtf((float)fan_in);
    size_t i;
    for (i = 0; i < L->weight->size; i++)
        L->weight->value[i] = (2.0f * nn_rng_uniform(rng) - 1.0f) * bound;
    if (L->bias)
        for (i = 0; i < L->bias->size; i++)
            L->bias->value[i] = (2.0f * nn_rng_uniform(rng) - 1.0f) * bound;
}

/* Adds bias[j] to every row of y (rows x cols); db[j] = sum of column j of dy. */
static void nn__add_row_bias(float *y, const float *bias, int rows, int cols)
{
    int i, j;
    for (i = 0; i < rows; i++)
        for (j = 0; j < cols; j++) y[(size_t)i * cols + j] += bias[j];
}

static void nn__sum_rows(const float *dy, float *db, int rows, int cols)
{
    int i, j;
    for (j = 0; j < cols; j++) db[j] = 0.0f;
    for (i = 0; i < rows; i++)
        for (j = 0; j < cols; j++) db[j] += dy[(size_t)i * cols + j];
}

NNDEF const char *nn_layer_name(nn_layer_kind kind)
{
    static const char *const names[NN_LAYER_KIND_COUNT] = {
        "?", "Linear", "Conv2d", "MaxPool2d", "AvgPool2d", "GlobalAvgPool", "BatchNorm",
        "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "GELU", "Softplus", "Scale", "Dropout",
        "Flatten", "Hardtanh", "Block", "Shortcut", "BlockEnd"
    };
    return kind > 0 && kind < NN_LAYER_KIND_COUNT ? names[kind] : "?";
}

static nn_layer_desc nn__desc(nn_layer_kind kind)
{
    nn_layer_desc d;
    memset(&d, 0, sizeof d);
    d.kind = kind;
    return d;
}

NNDEF nn_layer_desc nn_linear(int out_features)
{
    nn_layer_desc d = nn__desc(NN_LINEAR);
    d.out = out_features;
    return d;
}
NNDEF nn_layer_desc nn_conv2d(int out_channels, int kernel, int stride, int pad)
{
    nn_layer_desc d = nn__desc(NN_CONV2D);
    d.out = out_channels;
    d.kernel_h = d.kernel_w = kernel; d.stride_h = d.stride_w = stride; d.pad_h = d.pad_w = pad;
    return d;
}
NNDEF nn_layer_desc nn_maxpool2d(int kernel, int stride, int pad)
{
    nn_layer_desc d = nn__desc(NN_MAXPOOL2D);
    d.kernel_h = d.kernel_w = kernel; d.stride_h = d.stride_w = stride; d.pad_h = d.pad_w = pad;
    return d;
}
NNDEF nn_layer_desc nn_avgpool2d(int kernel, int stride, int pad)
{
    nn_layer_desc d = nn__desc(NN_AVGPOOL2D);
    d.kernel_h = d.kernel_w = kernel; d.stride_h = d.stride_w = stride; d.pad_h = d.pad_w = pad;
    return d;
}
NNDEF nn_layer_desc nn_global_avgpool(void) { return nn__desc(NN_GLOBAL_AVGPOOL); }
NNDEF nn_layer_desc nn_batchnorm(void) { return nn__desc(NN_BATCHNORM); }
NNDEF nn_layer_desc nn_relu(void) { return nn__desc(NN_RELU); }
NNDEF nn_layer_desc nn_leaky_relu(float negative_slope)
{
    nn_layer_desc d = nn__desc(NN_LEAKY_RELU);
    d.negative_slope = negative_slope;
    return d;
}
NNDEF nn_layer_desc nn_sigmoid(void) { return nn__desc(NN_SIGMOID); }
NNDEF nn_layer_desc nn_tanh(void) { return nn__desc(NN_TANH); }
NNDEF nn_layer_desc nn_gelu(int tanh_approximation)
{
    nn_layer_desc d = nn__desc(NN_GELU);
    d.approximate = tanh_approximation;
    return d;
}
NNDEF nn_layer_desc nn_softplus(float beta, float threshold)
{
    nn_layer_desc d = nn__desc(NN_SOFTPLUS);
    d.beta = beta; d.threshold = threshold;
    return d;
}
NNDEF nn_layer_desc nn_scale(float factor)
{
    nn_layer_desc d = nn__desc(NN_SCALE);
    d.factor = factor;
    return d;
}
NNDEF nn_layer_desc nn_dropout(float p)
{
    nn_layer_desc d = nn__desc(NN_DROPOUT);
    d.p = p;
    return d;
}
NNDEF nn_layer_desc nn_flatten(void) { return nn__desc(NN_FLATTEN); }
NNDEF nn_layer_desc nn_relu6(void) { return nn_hardtanh(0.0f, 6.0f); }
NNDEF nn_layer_desc nn_hardtanh(float min_val, float max_val)
{
    nn_layer_desc d = nn__desc(NN_HARDTANH);
    d.min_val = min_val; d.max_val = max_val;
    return d;
}
NNDEF nn_layer_desc nn_block(void) { return nn__desc(NN_BLOCK); }
NNDEF nn_layer_desc nn_shortcut(void) { return nn__desc(NN_SHORTCUT); }
NNDEF nn_layer_desc nn_block_end(int relu)
{
    nn_layer_desc d = nn__desc(NN_BLOCK_END);
    d.relu = relu;
    return d;
}
NNDEF nn_layer_desc nn_named(nn_layer_desc layer, const char *name)
{
    layer.name = name;
    return layer;
}

/* ---- Linear: y = x W^T + b ---------------------------------------------------------
   x: n x in, W: out x in (PyTorch's layout), y: n x out.
   Backward (batch form):  dW = dy^T x,  db = sum_rows(dy),  dx = dy W. */

/* An inference-only net's products leave the GEMM for nn__gemm_wide where the small
   side has at most this many columns: a convolution's output positions times the
   batch, or a Linear's batch (up to NN_WIDE_MAX_BATCH: beyond, W x^T's panels of x
   cost what the GEMM's packing of W does). Measured on the VGG ConvNet at batch 1, one
   thread: docs/PERFORMANCE.md, "Batch-1 inference". */
#ifndef NN_WIDE_MAX_N
#define NN_WIDE_MAX_N 64
#endif
#ifndef NN_WIDE_MAX_BATCH
#define NN_WIDE_MAX_BATCH 8
#endif

static int nn__wide_pays(const nn__run *r, int cols, int most)
{
    return r->inference && cols <= most && nn__wide_ok();
}

static nn_status nn__linear_setup(nn_net *net, nn_layer *L)
{
    int in = (int)nn_shape_size(L->in);
    if (L->desc.out <= 0)
        return nn__fail(NN_ERR_ARG, "Linear: %d output features, expected > 0", L->desc.out);
    if (L->in.h != 1 || L->in.w != 1)
        return nn__fail(NN_ERR_ARG, "Linear: input is %dx%dx%d; add nn_flatten() before it",
                        L->in.c, L->in.h, L->in.w);
    L->out = nn_shape1(L->desc.out);
    L->weight = nn__declare(net, L, "weight", 1, 2, L->desc.out, in, 0, 0);
    if (!L->desc.no_bias) L->bias = nn__declare(net, L, "bias", 1, 1, L->desc.out, 0, 0, 0);
    return NN_OK;
}

static void nn__linear_init(nn_layer *L, nn_rng *rng) { nn__init_fan_in(L, rng, (size_t)L->in.c); }

static void nn__linear_forward(const nn__run *r, nn_layer *L, const float *x, float *y, int n)
{
    int in = L->in.c, out = L->out.c;
    /* y^T = W x^T, W's rows in place */
    if (!nn__wide_pays(r, n, NN_WIDE_MAX_BATCH)
        || !nn__gemm_wide(out, n, in, L->weight->value, in, x, 1, (size_t)in, y, 1, (size_t)out))
        nn_gemm(0, 1, n, out, in, 1.0f, x, in, L->weight->value, in, 0.0f, y, out);
    if (L->bias) nn__add_row_bias(y, L->bias->value, n, out);
}

static void nn__linear_backward(const nn__run *r, nn_layer *L, const float *x, const float *y,
                                const float *dy, float *dx, int n)
{
    int in = L->in.c, out = L->out.c;
    (void)r; (void)y;
    if (!L->weight->options.frozen) nn_gemm(1, 0, out, in, n, 1.0f, dy, out, x, in, 0.0f, L->weight->grad, in);
    if (L->bias && !L->bias->options.frozen) nn__sum_rows(dy, L->bias->grad, n, out);
    if (dx) nn_gemm(0, 0, n, in, out, 1.0f, dy, out, L->weight->value, in, 0.0f, dx, in);
}

static const nn__layer_ops nn__linear_ops = {
    nn__linear_setup, nn__linear_init, nn__linear_forward, nn__linear_backward
};

/* ---- Element-wise activations --------------------------------------------------------
   y = f(x) element by element; the output shape is the input shape.
   Backward: dx = dy * f'(x). */

static nn_status nn__same_shape_setup(nn_net *net, nn_layer *L)
{
    (void)net;
    L->out = L->in;
    return NN_OK;
}

/* ReLU: y = max(0, x);  f'(x) = [x > 0] (0 at x = 0, as PyTorch). As PyTorch's, a NaN
   stays NaN and the backward, [y <= 0 ? 0 : dy], passes the gradient where y is NaN;
   -0 gives +0 (PyTorch's gives -0, the same value). */
static void nn__relu_forward(const nn__run *r, nn_layer *L, const float *x, float *y, int n)
{
    size_t count = (size_t)n * nn_shape_size(L->in);
    (void)r;
    nn__vmask_pos(y, x, x, count);
}

static void nn__relu_backward(const nn__run *r, nn_layer *L, const float *x, const float *y,
                              const float *dy, float *dx, int n)
{
    size_t count = (size_t)n * nn_shape_size(L->in);
    (void)r; (void)x;
    if (!dx) return;
    nn__vmask_pos(dx, y, dy, count);
}

static const nn__layer_ops nn__relu_ops = {
    nn__same_shape_setup, NULL, nn__relu_forward, nn__relu_backward
};

/* LeakyReLU: y = max(0, x) + a min(0, x);  f'(x) = 1 for x > 0, a for x <= 0
   (the derivative at exactly 0 is taken as a, as PyTorch does). */
static void nn__leaky_relu_forward(const nn__run *r, nn_layer *L, const float *x, float *y, int n)
{
    size_t count = (size_t)n * nn_shape_size(L->in);
    float a = L->desc.negative_slope;
    (void)r;
    nn__vselect_pos(y, x, x, count, a);
}

static void nn__leaky_relu_backward(const nn__run *r, nn_layer *L, const float *x, const float *y,
                                    const float *dy, float *dx, int n)
{
    size_t count = (size_t)n * nn_shape_size(L->in);
    float a = L->desc.negative_slope;
    (void)r; (void)y;
    if (!dx) return;
    nn__vselect_pos(dx, x, dy, count, a);
}

static const nn__layer_ops nn__leaky_relu_ops = {
    nn__same_shape_setup, NULL, nn__leaky_relu_forward, nn__leaky_relu_backward
};

/* Hardtanh(min, max): y = min(max(x, min), max);  f'(x) = [min < x < max] (0 at x = min
   or max, as PyTorch). Both 0: -1 and 1. A NaN stays NaN (PyTorch 1.13's clamp) and
   gets the gradient 0, as in the vectorised loop of PyTorch 1.13's hardtanh_backward
   ((x > min) & (x < max)), which handles all but the last few elements of a tensor (its
   scalar tail passes a NaN's gradient instead). */
static void nn__hardtanh_range(const nn_layer *L, float *lo, float *hi)
{
    int dflt = L->desc.min_val == 0.0f && L->desc.max_val == 0.0f;
    *lo = dflt ? -1.0f : L->desc.min_val;
    *hi = dflt ? 1.0f : L->desc.max_val;
}

static nn_status nn__hardtanh_setup(nn_net *net, nn_layer *L)
{
    float lo, hi;
    nn__hardtanh_range(L, &lo, &hi);
    if (!(lo < hi))
        return nn__fail(NN_ERR_ARG, "Hardtanh: min_val %g, max_val %g; expected min_val < max_val",
                        (double)lo, (double)hi);
    return nn__same_shape_setup(net, L);
}

static void nn__hardtanh_forward(const nn__run *r, nn_layer *L, const float *x, float *y, int n)
{
    size_t i, count = (size_t)n * nn_shape_size(L->in);
    float lo, hi;
    (void)r;
    nn__hardtanh_range(L, &lo, &hi);
    for (i = 0; i < count; i++) y[i] = x[i] < lo ? lo : x[i] > hi ? hi : x[i];
}

static void nn__hardtanh_backward(const nn__run *r, nn_layer *L, const float *x, const float *y,
                                  const float *dy, float *dx, int n)
{
    size_t i, count = (size_t)n * nn_shape_size(L->in);
    float lo, hi;
    (void)r; (void)y;
    if (!dx) return;
    nn__hardtanh_range(L, &lo, &hi);
    for (i = 0; i < count; i++) dx[i] = x[i] > lo && x[i] < hi ? dy[i] : 0.0f;
}

static const nn__layer_ops nn__hardtanh_ops = {
    nn__hardtanh_setup, NULL, nn__hardtanh_forward, nn__hardtanh_backward
};

/* ---- Flatten: c x h x w -> (c*h*w) x 1 x 1; the data does not move. ----------------
   A view: the plan makes its output its input and its input gradient the gradient of
   its output, so it has no forward or backward of its own. */

static nn_status nn__flatten_setup(nn_net *net, nn_layer *L)
{
    (void)net;
    if (nn_shape_size(L->in) > INT_MAX)
        return nn__fail(NN_ERR_ARG, "Flatten: %zu features, more than INT_MAX", nn_shape_size(L->in));
    L->out = nn_shape1((int)nn_shape_size(L->in));
    return NN_OK;
}

static const nn__layer_ops nn__flatten_ops = { nn__flatten_setup, NULL, NULL, NULL };

/* ---- Parallel loops in layers ------------------------------------------------------
   Loops over images, planes or channels run through nn__parallel: each task writes
   only its own slice, so results do not depend on the number of threads. GEMMs are
   never called from inside a task. */

typedef struct nn__layer_task {
    const nn__run *r;
    nn_layer *L;
    const float *x, *y, *dy;
    float *out;          /* y in forward, dx in backward */
    float *cols;         /* Conv2d: the K x nP column matrix */
    int n, ld;
} nn__layer_task;

static nn__layer_task nn__task(const nn__run *r, nn_layer *L, const float *x, const float *dy,
                               float *out, int n)
{
    nn__layer_task t;
    memset(&t, 0, sizeof t);
    t.r = r; t.L = L; t.x = x; t.dy = dy; t.out = out; t.n = n;
    return t;
}

/* ---- Conv2d: y_i = W col_i + b, col_i = im2col(x_i) --------------------------------
   x: n x C x H x W, weight W: O x K/G with K = C kh kw and G groups (PyTorch's
   [O, C/G, kh, kw]), col_i: K x P with P = oh*ow, y_i: O x P (NCHW); the dilated
   kernel spans (kh-1) dil_h + 1 rows. With groups, every product below is one GEMM per
   group g: output channels g O/G.., column rows g K/G.. (its input channels' rows).
   Backward (batch form): dW = sum_i dy_i col_i^T,  db[o] = sum_{i,p} dy_i[o,p],
   dx_i = col2im(W^T dy_i) (col2im adds the overlapping windows back).
   Batched path (when (K + O) * max_batch * P floats fit in NN_CONV_KEEP_COLS): the
   columns of all images sit side by side in one K x nP matrix, so each of the three
   products is ONE GEMM with nP columns (deep layers have P = 4 or 16: per-image GEMMs
   would be very skinny); an O x nP scratch holds W col before it is scattered to NCHW
   (and dy gathered from NCHW in backward). The columns are kept from forward for
   backward, which then overwrites them with W^T dy: every backward needs its forward.
   Otherwise one image at a time, with its columns rebuilt in backward. A 1x1
   convolution with stride 1 and no padding uses x_i as col_i, image by image.
   3x3 layers with stride 1 and padding 1 take the Winograd path below where it pays. */

#ifndef NN_CONV_KEEP_COLS
#define NN_CONV_KEEP_COLS ((size_t)1 << 26)   /* floats (256 MB) per layer */
#endif

/* ---- Conv2d, Winograd path: 3x3, stride 1, padding 1 --------------------------------
   The math is in "Winograd F(2x2, 3x3)" among the kernels. With T = tiles per image
   and ld = n T, the layer's workspace holds V (16 x C x ld: the input tiles, kept from
   forward for dU, then overwritten with dV). The net's scratch, shared by all layers
   since it only lives within one forward or backward, holds M or dM (16 x O x ld) and
   U or dU (16 x O x C); backward computes dU first, then U again for dV (cheaper than
   keeping every layer's U: up to 16 MB each in VGG). Matrix X_e starts at
   X + e * nn__wino_stride(rows, ld); plane (i, c) owns columns i*T .. i*T + T-1 of row c. */

/* Where it pays (measured on the VGG shapes, one thread, forward + backward against
   the im2col path): with at least 16 input channels (at 8 the 16 GEMMs are too thin:
   0.74-0.87x; at 16, 1.1x) and at least 64 tiles in a batch. With 1 to 8 tiles it ran
   at 0.3-0.5x, with 16 at 1.0x; with 32 (512 channels at 2x2, batch 32) at 1.0x alone
   but 0.8-0.9x inside the VGG step, where the 16 MB filter transforms no longer sit in
   the cache; with 64 at 1.2-1.4x, with 128 or more at 1.6-2.2x. A batch with fewer tiles,
   e.g. one image in inference, goes the im2col way image by image. */
#ifndef NN_WINO_MIN_CHANNELS
#define NN_WINO_MIN_CHANNELS 16
#endif
#ifndef NN_WINO_MIN_TILES
#define NN_WINO_MIN_TILES 64
#endif

#ifdef NN_NO_WINOGRAD
#define NN__WINO_BUILT 0
#else
#define NN__WINO_BUILT 1
#endif

/* Tests: 0 = Winograd where it pays, 1 = wherever it applies, -1 = never. */
static int nn__wino_mode;

static int nn__wino_tiles(const nn_layer *L) { return (L->in.h + 1) / 2 * ((L->in.w + 1) / 2); }

/* The distance between X_e and X_e+1 for rows x ld matrices: a skew of 64 floats
   keeps the 16 streams of a transform (often a power of two apart) out of one cache set. */
#define NN__WINO_SKEW 64
static size_t nn__wino_stride(int rows, int ld) { return (size_t)rows * ld + NN__WINO_SKEW; }

/* A batch of n goes the Winograd way (else image by image through im2col). */
static int nn__wino_pays(const nn__lplan *p, const nn_layer *L, int n)
{
    return p->winograd && (nn__wino_mode == 1 || (long)n * nn__wino_tiles(L) >= NN_WINO_MIN_TILES);
}

/* Chooses the Winograd path and sizes its buffers: kernel 3, stride 1, padding 1,
   where it pays (above), planes at most 2 NN__WINO_MAX_TW wide and buffers within
   NN_CONV_KEEP_COLS. The workspace also holds one image's im2col columns. */
static int nn__conv_winograd_setup(nn_net *net, nn_layer *L)
{
    size_t C = (size_t)L->in.c, O = (size_t)L->out.c, ld, v, u, m;   /* in floats */
    size_t cols = 9 * C * L->out.h * L->out.w;
    if (!NN__WINO_BUILT || nn__wino_mode < 0 || L->desc.kernel_h != 3 || L->desc.stride_h != 1 || L->desc.pad_h != 1 ||
        L->desc.kernel_w != 3 || L->desc.stride_w != 1 || L->desc.pad_w != 1 || L->desc.groups != 1 ||
        L->desc.dilation_h != 1 || L->desc.dilation_w != 1 ||
        L->in.w > 2 * NN__WINO_MAX_TW || (size_t)L->in.h * L->in.w > NN_CONV_KEEP_COLS ||
        (nn__wino_mode == 0 && (L->in.c < NN_WINO_MIN_CHANNELS ||
                                (long)net->max_batch * nn__wino_tiles(L) < NN_WINO_MIN_TILES)) ||
        !nn__mul_ok((size_t)nn__wino_tiles(L), (size_t)net->max_batch, &ld) ||
        !nn__mul_ok(16 * C, ld, &v) || !nn__mul_ok(16 * O, C, &u) ||
        !nn__mul_ok(16 * O, ld, &m) || v + u > NN_CONV_KEEP_COLS || m + u > NN_CONV_KEEP_COLS)
        return 0;
    v += 16 * NN__WINO_SKEW;
    u += 16 * NN__WINO_SKEW;
    m += 16 * NN__WINO_SKEW;
    nn__plan_of(net, L)->work_size = v > cols ? v : cols;
    if (m + u > net->scratch_size) net->scratch_size = m + u;
    return 1;
}

/* Runs fn(ctx, item) for items 0 .. count-1 (independent of each other) in at most 64
   tasks, so that one task is not one small plane. */
typedef struct nn__items {
    nn__task_fn fn;
    void *ctx;
    int count, tasks;
} nn__items;

static void nn__items_task(void *ctx, int task)
{
    const nn__items *it = (const nn__items *)ctx;
    int i = (int)((long long)it->count * task / it->tasks);
    int end = (int)((long long)it->count * (task + 1) / it->tasks);
    for (; i < end; i++) it->fn(it->ctx, i);
}

static void nn__parallel_items(int count, nn__task_fn fn, void *ctx)
{
    nn__items it;
    it.fn = fn;
    it.ctx = ctx;
    it.count = count;
    it.tasks = count < 64 ? count : 64;
    nn__parallel(it.tasks, nn__items_task, &it);
}

/* Tasks: t->cols is the transformed matrix (U, V, M, dM, dU or dV), t->ld = n T. */
static void nn__wino_filter_task(void *ctx, int o)
{
    const nn__layer_task *t = (const nn__layer_task *)ctx;
    const nn_layer *L = t->L;
    nn__wino_filter(L->weight->value, L->in.c, o, t->cols, nn__wino_stride(L->out.c, L->in.c));
}

/* dW from dU for output channel o; then, if dx is wanted, U again in dU's place (row o
   of every U_e was only read by this o's dW). */
static void nn__wino_filter_grad_task(void *ctx, int o)
{
    const nn__layer_task *t = (const nn__layer_task *)ctx;
    const nn_layer *L = t->L;
    size_t ld_u = nn__wino_stride(L->out.c, L->in.c);
    nn__wino_filter_grad(t->cols, ld_u, L->in.c, o, L->weight->grad);
    if (t->out) nn__wino_filter(L->weight->value, L->in.c, o, t->cols, ld_u);
}

/* Plane tasks go channel by channel, so that consecutive items fill or read one row
   of each X_e from left to right: item = c * per + k with k an image, or for small
   planes a group of four images. */
static int nn__wino_per_channel(const nn_layer *L, int n)
{
    return L->in.h <= NN__WINO_SMALL && L->in.w <= NN__WINO_SMALL ? (n + 3) / 4 : n;
}

/* For item: the channel, the first image, the number of images (0: one, whole-plane
   path) and the offset of the first image's tiles in a row of X_e. */
static int nn__wino_item(const nn__layer_task *t, int item, int *channel, int *image, size_t *col)
{
    const nn_layer *L = t->L;
    int per = nn__wino_per_channel(L, t->n), k = item % per, small = per != t->n;
    *channel = item / per;
    *image = small ? 4 * k : k;
    *col = (size_t)*image * nn__wino_tiles(L);
    return small ? (t->n - *image < 4 ? t->n - *image : 4) : 0;
}

/* Planes to columns, the input's (forward) or the output gradient's (backward): item's
   planes of `channels`-channel images at planes, transformed into t->cols. */
static void nn__wino_planes_to_cols(const nn__layer_task *t, int item, int channels, const float *planes,
                                    void (*whole)(const float *, int, int, float *, size_t),
                                    void (*small)(const float *, size_t, int, int, int, float *, size_t))
{
    int H = t->L->in.h, W = t->L->in.w, c, i, images;   /* the output is H x W too */
    size_t col, plane = (size_t)H * W, ld = nn__wino_stride(channels, t->ld);
    images = nn__wino_item(t, item, &c, &i, &col);
    if (images)
        small(planes + ((size_t)i * channels + c) * plane, channels * plane, images, H, W,
              t->cols + (size_t)c * t->ld + col, ld);
    else
        whole(planes + ((size_t)i * channels + c) * plane, H, W, t->cols + (size_t)c * t->ld + col, ld);
}

static void nn__wino_input_task(void *ctx, int item)
{
    const nn__layer_task *t = (const nn__layer_task *)ctx;
    nn__wino_planes_to_cols(t, item, t->L->in.c, t->x, nn__wino_input, nn__wino_input_small);
}

static void nn__wino_input_grad_task(void *ctx, int item)
{
    const nn__layer_task *t = (const nn__layer_task *)ctx;
    const nn_layer *L = t->L;
    int C = L->in.c, H = L->in.h, W = L->in.w, c, i, images;
    size_t col, plane = (size_t)H * W, ld_v = nn__wino_stride(C, t->ld);
    images = nn__wino_item(t, item, &c, &i, &col);
    if (images)
        nn__wino_input_grad_small(t->cols + (size_t)c * t->ld + col, ld_v, images, H, W,
                                  t->out + ((size_t)i * C + c) * plane, C * plane);
    else
        nn__wino_input_grad(t->cols + (size_t)c * t->ld + col, ld_v, H, W, t->out + ((size_t)i * C + c) * plane);
}

static void nn__wino_output_task(void *ctx, int item)
{
    const nn__layer_task *t = (const nn__layer_task *)ctx;
    const nn_layer *L = t->L;
    int O = L->out.c, H = L->out.h, W = L->out.w, o, i, images;
    size_t col, plane = (size_t)H * W, ld_m = nn__wino_stride(O, t->ld);
    float bias;
    images = nn__wino_item(t, item, &o, &i, &col);
    bias = L->bias ? L->bias->value[o] : 0.0f;
    if (images)
        nn__wino_output_small(t->cols + (size_t)o * t->ld + col, ld_m, images, H, W, bias,
                              t->out + ((size_t)i * O + o) * plane, O * plane);
    else
        nn__wino_output(t->cols + (size_t)o * t->ld + col, ld_m, H, W, bias, t->out + ((size_t)i * O + o) * plane);
}

static void nn__wino_output_grad_task(void *ctx, int item)
{
    const nn__layer_task *t = (const nn__layer_task *)ctx;
    nn__wino_planes_to_cols(t, item, t->L->out.c, t->dy, nn__wino_output_grad, nn__wino_output_grad_small);
}

static void nn__wino_forward(const nn__run *r, nn_layer *L, const float *x, float *y, int n)
{
    int C = L->in.c, O = L->out.c, ld = n * nn__wino_tiles(L), e;
    size_t sv = nn__wino_stride(C, ld), su = nn__wino_stride(O, C), sm = nn__wino_stride(O, ld);
    float *V = r->work, *M = r->scratch;
    float *U = r->scratch + 16 * nn__wino_stride(O, r->max_batch * nn__wino_tiles(L));
    nn__layer_task t = nn__task(r, L, x, NULL, y, n);
    t.ld = ld;
    t.cols = U;
    nn__parallel_items(O, nn__wino_filter_task, &t);
    t.cols = V;
    nn__parallel_items(C * nn__wino_per_channel(L, n), nn__wino_input_task, &t);
    for (e = 0; e < 16; e++)
        nn_gemm(0, 0, O, ld, C, 1.0f, U + e * su, C, V + e * sv, ld, 0.0f, M + e * sm, ld);
    t.cols = M;
    nn__parallel_items(O * nn__wino_per_channel(L, n), nn__wino_output_task, &t);
}

/* A convolution's bias gradient: db[o] = the sum of dy[i][o] over images i, then
   positions, in that order (one chain, so every conv path gives the same bits). */
typedef struct nn__bias_grad_job { const float *dy; int n, O, P; float *db; } nn__bias_grad_job;

static void nn__conv_bias_grad_channel(void *ctx, int o)
{
    const nn__bias_grad_job *b = (const nn__bias_grad_job *)ctx;
    float sum = 0.0f;
    int i, j;
    for (i = 0; i < b->n; i++) {
        const float *row = b->dy + ((size_t)i * b->O + o) * b->P;
        for (j = 0; j < b->P; j++) sum += row[j];
    }
    b->db[o] = sum;
}

static void nn__conv_bias_grad(const float *dy, int n, int O, int P, float *db)
{
    nn__bias_grad_job b;
    b.dy = dy; b.n = n; b.O = O; b.P = P; b.db = db;
    nn__parallel_items(O, nn__conv_bias_grad_channel, &b);
}

static void nn__wino_backward(const nn__run *r, nn_layer *L, const float *dy, float *dx, int n)
{
    int C = L->in.c, O = L->out.c, P = L->out.h * L->out.w, ld = n * nn__wino_tiles(L), e;
    size_t sv = nn__wino_stride(C, ld), su = nn__wino_stride(O, C), sm = nn__wino_stride(O, ld);
    float *V = r->work, *dM = r->scratch;
    float *dU = r->scratch + 16 * nn__wino_stride(O, r->max_batch * nn__wino_tiles(L)), *U = dU;
    nn__layer_task t = nn__task(r, L, NULL, dy, dx, n);
    t.ld = ld;
    if (L->bias) nn__conv_bias_grad(dy, n, O, P, L->bias->grad);
    t.cols = dM;
    nn__parallel_items(O * nn__wino_per_channel(L, n), nn__wino_output_grad_task, &t);
    for (e = 0; e < 16; e++)
        nn_gemm(0, 1, O, C, ld, 1.0f, dM + e * sm, ld, V + e * sv, ld, 0.0f, dU + e * su, C);
    t.cols = dU;
    nn__parallel_items(O, nn__wino_filter_grad_task, &t);   /* and U, if dx */
    if (!dx) return;
    for (e = 0; e < 16; e++)   /* V has served dU: overwrite it with dV */
        nn_gemm(1, 0, C, ld, O, 1.0f, U + e * su, C, dM + e * sm, ld, 0.0f, V + e * sv, ld);
    t.cols = V;
    nn__parallel_items(C * nn__wino_per_channel(L, n), nn__wino_input_grad_task, &t);
}

/* Tests: 0 = the depthwise path where it applies, -1 = never (the grouped GEMMs);
   set before nn_build. */
static int nn__depthwise_mode;

/* Depthwise: one filter per channel (groups = in = out channels), not a GEMM. */
static int nn__conv_depthwise(const nn__lplan *p, const nn_layer *L)
{
    return nn__depthwise_mode >= 0 && !p->winograd && L->desc.groups == L->in.c && L->out.c == L->in.c;
}

static int nn__conv_direct(const nn_layer *L)
{
    const nn_layer_desc *d = &L->desc;
    return d->kernel_h == 1 && d->kernel_w == 1 && d->stride_h == 1 && d->stride_w == 1 &&
           d->pad_h == 0 && d->pad_w == 0;
}

/* Rows of the column matrix: every input channel's kernel_h*kernel_w offsets; group g
   uses rows g*Kg .. g*Kg + Kg-1, Kg = (C/groups) kernel_h kernel_w. */
static size_t nn__conv_rows(const nn_layer *L)
{
    return (size_t)L->in.c * L->desc.kernel_h * L->desc.kernel_w;
}

static nn_status nn__conv2d_setup(nn_net *net, nn_layer *L)
{
    nn_layer_desc *d = &L->desc;
    int C = L->in.c, oh, ow;
    long long ph = (long long)L->in.h + 2LL * d->pad_h, pw = (long long)L->in.w + 2LL * d->pad_w;   /* padded */
    long long eh, ew;   /* the dilated kernel's extent */
    size_t rows, col_size, all;
    nn__lplan *lp = nn__plan_of(net, L);
    if (!d->stride_h) d->stride_h = 1;
    if (!d->stride_w) d->stride_w = 1;
    if (!d->dilation_h) d->dilation_h = 1;
    if (!d->dilation_w) d->dilation_w = 1;
    if (!d->groups) d->groups = 1;
    if (d->out <= 0)
        return nn__fail(NN_ERR_ARG, "Conv2d: %d output channels, expected > 0", d->out);
    if (d->kernel_h <= 0 || d->kernel_w <= 0)
        return nn__fail(NN_ERR_ARG, "Conv2d: kernel %dx%d, expected > 0", d->kernel_h, d->kernel_w);
    if (C % d->groups || d->out % d->groups)
        return nn__fail(NN_ERR_ARG, "Conv2d: %d groups do not divide %d input and %d output channels",
                        d->groups, C, d->out);
    eh = (long long)(d->kernel_h - 1) * d->dilation_h + 1;
    ew = (long long)(d->kernel_w - 1) * d->dilation_w + 1;
    if (ph < eh || pw < ew)
        return nn__fail(NN_ERR_ARG, "Conv2d: kernel %dx%d (dilation %dx%d) does not fit the %dx%d input "
                        "padded by %dx%d", d->kernel_h, d->kernel_w, d->dilation_h, d->dilation_w,
                        L->in.h, L->in.w, d->pad_h, d->pad_w);
    if ((ph - eh) / d->stride_h + 1 > INT_MAX || (pw - ew) / d->stride_w + 1 > INT_MAX ||
        ph > INT_MAX || pw > INT_MAX)
        return nn__fail(NN_ERR_ARG, "Conv2d: padding %dx%d makes the output more than INT_MAX wide",
                        d->pad_h, d->pad_w);
    oh = (int)((ph - eh) / d->stride_h + 1);
    ow = (int)((pw - ew) / d->stride_w + 1);
    L->out = nn_shape3(d->out, oh, ow);
    L->weight = nn__declare(net, L, "weight", 1, 4, d->out, C / d->groups, d->kernel_h, d->kernel_w);
    if (!d->no_bias) L->bias = nn__declare(net, L, "bias", 1, 1, d->out, 0, 0, 0);
    if (!nn__mul_ok((size_t)C * d->kernel_h, (size_t)d->kernel_w, &rows) || rows > INT_MAX ||
        !nn__mul_ok(rows, (size_t)oh * ow, &col_size))
        return nn__fail(NN_ERR_NOMEM, "Conv2d: the column buffer is too large");
    lp->winograd = nn__conv_winograd_setup(net, L);
    if (lp->winograd) return NN_OK;
    if (nn__conv_direct(L) || nn__conv_depthwise(lp, L)) lp->work_size = 0;
    else if (nn__mul_ok(rows + (size_t)d->out, (size_t)oh * ow * net->max_batch, &all) &&
             all <= NN_CONV_KEEP_COLS)
        lp->work_size = all;
    else lp->work_size = col_size;
    return NN_OK;
}

static void nn__conv2d_init(nn_layer *L, nn_rng *rng)
{
    nn__init_fan_in(L, rng, (size_t)(L->in.c / L->desc.groups) * L->desc.kernel_h * L->desc.kernel_w);
}

/* One image's columns (im2col, dilated or not) into col, and back (col2im adds). */
static void nn__conv_im2col(const nn_layer *L, const float *x, float *col, int ld)
{
    const nn_layer_desc *d = &L->desc;
    if (d->dilation_h == 1 && d->dilation_w == 1)
        nn_im2col(x, L->in.c, L->in.h, L->in.w, d->kernel_h, d->kernel_w, d->stride_h, d->stride_w,
                  d->pad_h, d->pad_w, col, ld);
    else
        nn__im2col_dilated(x, L->in.c, L->in.h, L->in.w, d->kernel_h, d->kernel_w, d->stride_h, d->stride_w,
                           d->pad_h, d->pad_w, d->dilation_h, d->dilation_w, L->out.h, L->out.w, col, ld);
}

static void nn__conv_col2im(const nn_layer *L, const float *col, int ld, float *x)
{
    const nn_layer_desc *d = &L->desc;
    if (d->dilation_h == 1 && d->dilation_w == 1)
        nn_col2im(col, ld, L->in.c, L->in.h, L->in.w, d->kernel_h, d->kernel_w, d->stride_h, d->stride_w,
                  d->pad_h, d->pad_w, x);
    else
        nn__col2im_dilated(col, ld, L->in.c, L->in.h, L->in.w, d->kernel_h, d->kernel_w, d->stride_h,
                           d->stride_w, d->pad_h, d->pad_w, d->dilation_h, d->dilation_w, L->out.h, L->out.w, x);
}

/* Image i's columns into (task im2col) or out of (task col2im, into a zeroed dx_i)
   columns i*P .. i*P + P-1 of the K x nP matrix. */
static void nn__conv_im2col_task(void *ctx, int i)
{
    const nn__layer_task *t = (const nn__layer_task *)ctx;
    const nn_layer *L = t->L;
    nn__conv_im2col(L, t->x + nn_shape_size(L->in) * i, t->cols + (size_t)i * L->out.h * L->out.w, t->ld);
}

static void nn__conv_col2im_task(void *ctx, int i)
{
    const nn__layer_task *t = (const nn__layer_task *)ctx;
    const nn_layer *L = t->L;
    float *dxi = t->out + nn_shape_size(L->in) * i;
    memset(dxi, 0, nn_shape_size(L->in) * sizeof(float));
    nn__conv_col2im(L, t->cols + (size_t)i * L->out.h * L->out.w, t->ld, dxi);
}

/* Image i's rows of the O x nP product t->cols into y_i, plus the bias (task scatter),
   and of dy_i into the O x nP t->out (task gather). */
static void nn__conv_scatter_task(void *ctx, int i)
{
    const nn__layer_task *t = (const nn__layer_task *)ctx;
    const nn_layer *L = t->L;
    int O = L->out.c, P = L->out.h * L->out.w, o, j;
    for (o = 0; o < O; o++) {
        const float *src = t->cols + (size_t)o * t->ld + (size_t)i * P;
        float b = L->bias ? L->bias->value[o] : 0.0f, *dst = t->out + nn_shape_size(L->out) * i + (size_t)o * P;
        for (j = 0; j < P; j++) dst[j] = src[j] + b;
    }
}

static void nn__conv_gather_task(void *ctx, int i)
{
    const nn__layer_task *t = (const nn__layer_task *)ctx;
    const nn_layer *L = t->L;
    int O = L->out.c, P = L->out.h * L->out.w, o;
    for (o = 0; o < O; o++)
        memcpy(t->out + (size_t)o * t->ld + (size_t)i * P, t->dy + nn_shape_size(L->out) * i + (size_t)o * P,
               (size_t)P * sizeof(float));
}

/* The batched path is on when the workspace holds more than one image's columns
   (for an im2col layer). */
static int nn__conv_batched(const nn__lplan *p, const nn_layer *L)
{
    return !p->winograd && p->work_size > nn__conv_rows(L) * L->out.h * L->out.w;
}

/* Grouped products, one GEMM per group g on its rows of A (rows_a of them, at
   g rows_a lda) and of B (rows_b, at g rows_b ldb) into its rows of C (rows_c):
   for groups = 1 the single GEMM of an ungrouped convolution. */
static void nn__conv_gemm(int groups, int trans_a, int trans_b, int m, int n, int k,
                          const float *a, int lda, size_t step_a, const float *b, int ldb, size_t step_b,
                          float beta, float *c, int ldc, size_t step_c)
{
    int g;
    for (g = 0; g < groups; g++)
        nn_gemm(trans_a, trans_b, m, n, k, 1.0f, a + step_a * g, lda, b + step_b * g, ldb, beta,
                c + step_c * g, ldc);
}

/* ---- Conv2d, depthwise path: groups = in = out channels --------------------------
   y[i,c] = b[c] + sum over the offsets (ky, kx) of w[c,ky,kx] x[i,c] shifted by
   (ky dil_h - pad_h, kx dil_w - pad_w) and strided: per offset, one multiply-add over
   the outputs whose input is inside the plane (nn__valid_range), so the loops stay
   contiguous for stride 1. Memory-bound: planes in, planes out, no columns.
   Backward: dx[i,c] gathers w dy back along the same shifts (per plane, one task
   each); dw[c,ky,kx] = sum over images (in order) of sum(dy shifted-x), per channel
   one task, so no sum depends on the number of threads. */

typedef struct nn__dw_offset { int y_lo, y_hi, x_lo, x_hi, at; } nn__dw_offset;

/* The outputs of offset (ky, kx) that read inside the plane, and the input index that
   output (y_lo, x_lo) reads; 0 if there are none. */
static int nn__dw_offset_range(const nn_layer *L, int ky, int kx, nn__dw_offset *o)
{
    const nn_layer_desc *d = &L->desc;
    nn__valid_range(L->out.h, L->in.h, d->stride_h, d->pad_h, ky * d->dilation_h, &o->y_lo, &o->y_hi);
    nn__valid_range(L->out.w, L->in.w, d->stride_w, d->pad_w, kx * d->dilation_w, &o->x_lo, &o->x_hi);
    if (o->y_lo >= o->y_hi || o->x_lo >= o->x_hi) return 0;
    o->at = (o->y_lo * d->stride_h - d->pad_h + ky * d->dilation_h) * L->in.w +
            o->x_lo * d->stride_w - d->pad_w + kx * d->dilation_w;
    return 1;
}

static void nn__dw_forward_plane(void *ctx, int item)
{
    const nn__layer_task *t = (const nn__layer_task *)ctx;
    const nn_layer *L = t->L;
    const nn_layer_desc *d = &L->desc;
    int c = item % L->in.c, ow = L->out.w, sh = d->stride_h, sw = d->stride_w, ky, kx, oy;
    size_t P = (size_t)L->out.h * ow, j, row = (size_t)sh * L->in.w;
    const float *x = t->x + (size_t)item * L->in.h * L->in.w, *w = L->weight->value + (size_t)c * d->kernel_h * d->kernel_w;
    float *y = t->out + (size_t)item * P, b = L->bias ? L->bias->value[c] : 0.0f;
    nn__dw_offset o;
    for (j = 0; j < P; j++) y[j] = b;
    for (ky = 0; ky < d->kernel_h; ky++)
        for (kx = 0; kx < d->kernel_w; kx++) {
            float wv = w[ky * d->kernel_w + kx];
            const float *src;
            if (!nn__dw_offset_range(L, ky, kx, &o)) continue;
            src = x + o.at;
            for (oy = o.y_lo; oy < o.y_hi; oy++, src += row) {
                nn__vaxpy_gather(y + (size_t)oy * ow + o.x_lo, src, (size_t)sw, o.x_hi - o.x_lo, wv);
            }
        }
}

static void nn__dw_input_grad_plane(void *ctx, int item)
{
    const nn__layer_task *t = (const nn__layer_task *)ctx;
    const nn_layer *L = t->L;
    const nn_layer_desc *d = &L->desc;
    int c = item % L->in.c, ow = L->out.w, sh = d->stride_h, sw = d->stride_w, ky, kx, oy;
    size_t plane = (size_t)L->in.h * L->in.w, row = (size_t)sh * L->in.w;
    const float *dy = t->dy + (size_t)item * L->out.h * ow, *w = L->weight->value + (size_t)c * d->kernel_h * d->kernel_w;
    float *dx = t->out + (size_t)item * plane;
    nn__dw_offset o;
    memset(dx, 0, plane * sizeof(float));
    for (ky = 0; ky < d->kernel_h; ky++)
        for (kx = 0; kx < d->kernel_w; kx++) {
            float wv = w[ky * d->kernel_w + kx], *dst;
            if (!nn__dw_offset_range(L, ky, kx, &o)) continue;
            dst = dx + o.at;
            for (oy = o.y_lo; oy < o.y_hi; oy++, dst += row) {
                nn__vaxpy_scatter(dst, (size_t)sw, dy + (size_t)oy * ow + o.x_lo, o.x_hi - o.x_lo, wv);
            }
        }
}

static void nn__dw_weight_grad_channel(void *ctx, int c)
{
    const nn__layer_task *t = (const nn__layer_task *)ctx;
    const nn_layer *L = t->L;
    const nn_layer_desc *d = &L->desc;
    int C = L->in.c, ow = L->out.w, sh = d->stride_h, sw = d->stride_w, kk = d->kernel_h * d->kernel_w;
    int i, ky, kx, oy;
    size_t plane = (size_t)L->in.h * L->in.w, P = (size_t)L->out.h * ow, row = (size_t)sh * L->in.w;
    float *dw = L->weight->grad + (size_t)c * kk;
    nn__dw_offset o;
    for (i = 0; i < kk; i++) dw[i] = 0.0f;
    for (i = 0; i < t->n; i++) {
        const float *x = t->x + ((size_t)i * C + c) * plane, *dy = t->dy + ((size_t)i * C + c) * P;
        for (ky = 0; ky < d->kernel_h; ky++)
            for (kx = 0; kx < d->kernel_w; kx++) {
                const float *src;
                float sum = 0.0f;
                if (!nn__dw_offset_range(L, ky, kx, &o)) continue;
                src = x + o.at;
                for (oy = o.y_lo; oy < o.y_hi; oy++, src += row) {
                    sum += nn__vdot_strided(dy + (size_t)oy * ow + o.x_lo, src, (size_t)sw, o.x_hi - o.x_lo);
                }
                dw[ky * d->kernel_w + kx] += sum;
            }
    }
}

/* y = W col per group (Og x ld at g Og ld from the Kg x ld columns at g Kg ld): with
   the weights in place (nn__gemm_wide) where that pays, else the GEMM; the same bits. */
static void nn__conv_product(const nn__run *r, const nn_layer *L, int Og, int ld, int Kg, const float *col,
                             float *y)
{
    int G = L->desc.groups, g, wide = nn__wide_pays(r, ld, NN_WIDE_MAX_N);
    size_t wg = (size_t)Og * Kg;
    for (g = 0; wide && g < G; g++)
        if (!nn__gemm_wide(Og, ld, Kg, L->weight->value + wg * g, Kg, col + (size_t)g * Kg * ld, (size_t)ld, 1,
                           y + (size_t)g * Og * ld, (size_t)ld, 1))
            wide = 0;   /* out of memory: the GEMM does it all */
    if (wide) return;
    nn__conv_gemm(G, 0, 0, Og, ld, Kg, L->weight->value, Kg, wg, col, ld, (size_t)Kg * ld, 0.0f, y, ld,
                  (size_t)Og * ld);
}

static void nn__conv2d_forward(const nn__run *r, nn_layer *L, const float *x, float *y, int n)
{
    int C = L->in.c, O = L->out.c, P = L->out.h * L->out.w, K = (int)nn__conv_rows(L), i, o, j;
    int G = L->desc.groups, Og = O / G, Kg = K / G;
    size_t in_size = nn_shape_size(L->in), out_size = nn_shape_size(L->out);
    int winograd = nn__wino_pays(r->p, L, n);
    r->p->wino_skip = winograd && !nn__vfinite(x, (size_t)n * in_size);
    if (winograd && !r->p->wino_skip) {
        nn__wino_forward(r, L, x, y, n);
        return;
    }
    if (nn__conv_depthwise(r->p, L)) {
        nn__layer_task task = nn__task(r, L, x, NULL, y, n);
        nn__parallel_items(n * C, nn__dw_forward_plane, &task);
        return;
    }
    if (nn__conv_batched(r->p, L)) {
        int ld = n * P;
        float *cols = r->work, *t = r->work + (size_t)K * r->max_batch * P;
        nn__layer_task task = nn__task(r, L, x, NULL, y, n);
        task.cols = cols;
        task.ld = ld;
        nn__parallel_items(n, nn__conv_im2col_task, &task);
        nn__conv_product(r, L, Og, ld, Kg, cols, t);
        task.cols = t;
        nn__parallel_items(n, nn__conv_scatter_task, &task);
        return;
    }
    for (i = 0; i < n; i++) {
        const float *col = x + in_size * i;
        float *yi = y + out_size * i;
        if (!nn__conv_direct(L)) {
            nn__conv_im2col(L, col, r->work, P);
            col = r->work;
        }
        nn__conv_product(r, L, Og, P, Kg, col, yi);
        if (L->bias)
            for (o = 0; o < O; o++) {
                float b = L->bias->value[o], *row = yi + (size_t)o * P;
                for (j = 0; j < P; j++) row[j] += b;
            }
    }
}

static void nn__conv2d_backward(const nn__run *r, nn_layer *L, const float *x, const float *y,
                                const float *dy, float *dx, int n)
{
    int C = L->in.c, O = L->out.c, P = L->out.h * L->out.w, K = (int)nn__conv_rows(L), i;
    int G = L->desc.groups, Og = O / G, Kg = K / G;
    size_t in_size = nn_shape_size(L->in), out_size = nn_shape_size(L->out), wg = (size_t)Og * Kg;
    /* a frozen weight or bias gets no gradient (its grad keeps its old values) */
    int direct = nn__conv_direct(L), dw = !L->weight->options.frozen;
    float *db = L->bias && !L->bias->options.frozen ? L->bias->grad : NULL;
    (void)y;
    if (nn__wino_pays(r->p, L, n) && !r->p->wino_skip) {
        nn__wino_backward(r, L, dy, dx, n);
        return;
    }
    if (nn__conv_depthwise(r->p, L)) {
        nn__layer_task task = nn__task(r, L, x, dy, dx, n);
        if (db) nn__conv_bias_grad(dy, n, O, P, db);
        if (dw) nn__parallel_items(C, nn__dw_weight_grad_channel, &task);
        if (dx) nn__parallel_items(n * C, nn__dw_input_grad_plane, &task);
        return;
    }
    if (nn__conv_batched(r->p, L)) {
        int ld = n * P;
        float *cols = r->work, *t = r->work + (size_t)K * r->max_batch * P;
        nn__layer_task task;
        task = nn__task(r, L, x, dy, t, n);   /* t = dy as O x nP */
        task.ld = ld;
        nn__parallel_items(n, nn__conv_gather_task, &task);
        if (db) nn__conv_bias_grad(dy, n, O, P, db);
        if (dw)
            nn__conv_gemm(G, 0, 1, Og, Kg, ld, t, ld, (size_t)Og * ld, cols, ld, (size_t)Kg * ld,
                          0.0f, L->weight->grad, Kg, wg);
        if (!dx) return;
        /* the columns have served dW: overwrite them with dcol = W^T dy */
        nn__conv_gemm(G, 1, 0, Kg, ld, Og, L->weight->value, Kg, wg, t, ld, (size_t)Og * ld,
                      0.0f, cols, ld, (size_t)Kg * ld);
        task = nn__task(r, L, x, dy, dx, n);
        task.cols = cols;
        task.ld = ld;
        nn__parallel_items(n, nn__conv_col2im_task, &task);
        return;
    }
    if (db) nn__conv_bias_grad(dy, n, O, P, db);
    for (i = 0; i < n && (dw || dx); i++) {
        const float *xi = x + in_size * i, *dyi = dy + out_size * i, *col = xi;
        if (dw && !direct) {
            nn__conv_im2col(L, xi, r->work, P);
            col = r->work;
        }
        if (dw)
            nn__conv_gemm(G, 0, 1, Og, Kg, P, dyi, P, (size_t)Og * P, col, P, (size_t)Kg * P,
                          i ? 1.0f : 0.0f, L->weight->grad, Kg, wg);
        if (!dx) continue;
        if (direct) {
            nn__conv_gemm(G, 1, 0, Kg, P, Og, L->weight->value, Kg, wg, dyi, P, (size_t)Og * P,
                          0.0f, dx + in_size * i, P, (size_t)Kg * P);
        } else {
            nn__conv_gemm(G, 1, 0, Kg, P, Og, L->weight->value, Kg, wg, dyi, P, (size_t)Og * P,
                          0.0f, r->work, P, (size_t)Kg * P);
            memset(dx + in_size * i, 0, in_size * sizeof(float));
            nn__conv_col2im(L, r->work, P, dx + in_size * i);
        }
    }
}

static const nn__layer_ops nn__conv2d_ops = {
    nn__conv2d_setup, nn__conv2d_init, nn__conv2d_forward, nn__conv2d_backward
};

/* ---- Pooling geometry, shared by MaxPool2d and AvgPool2d ---------------------------
   stride 0 means stride = kernel (PyTorch's default), per axis; out = floor((H + 2p - k)/s)
   + 1, or with ceil_mode ceil(...) + 1, less one if that last window would start at or
   past H + p (PyTorch's rule: every window starts inside the input or the left padding).
   PyTorch requires pad <= kernel/2, so every window holds at least one real pixel. */

static int nn__pool_out(int size, int k, int s, int p, int ceil_mode, long long *out)
{
    long long span = (long long)size + 2LL * p - k, o;
    if (span < 0) return 0;
    o = (span + (ceil_mode ? s - 1 : 0)) / s + 1;
    if (ceil_mode && (o - 1) * s >= (long long)size + p) o--;
    *out = o;
    return o <= INT_MAX;
}

static nn_status nn__pool_setup(nn_net *net, nn_layer *L)
{
    nn_layer_desc *d = &L->desc;
    long long oh, ow;
    (void)net;
    if (d->stride_h == 0) d->stride_h = d->kernel_h;
    if (d->stride_w == 0) d->stride_w = d->kernel_w;
    if (d->kernel_h <= 0 || d->kernel_w <= 0 || d->stride_h <= 0 || d->stride_w <= 0)
        return nn__fail(NN_ERR_ARG, "kernel %dx%d, stride %dx%d; expected kernel > 0, "
                        "stride >= 0 (0: the kernel)", d->kernel_h, d->kernel_w, d->stride_h, d->stride_w);
    if (d->pad_h > d->kernel_h / 2 || d->pad_w > d->kernel_w / 2)
        return nn__fail(NN_ERR_ARG, "padding %dx%d is more than half the kernel %dx%d", d->pad_h, d->pad_w,
                        d->kernel_h, d->kernel_w);
    if (d->kind != NN_AVGPOOL2D && d->exclude_pad)
        return nn__fail(NN_ERR_ARG, "exclude_pad is an AvgPool2d option");
    if (!nn__pool_out(L->in.h, d->kernel_h, d->stride_h, d->pad_h, d->ceil_mode, &oh) ||
        !nn__pool_out(L->in.w, d->kernel_w, d->stride_w, d->pad_w, d->ceil_mode, &ow))
        return nn__fail(NN_ERR_ARG, "kernel %dx%d does not fit the %dx%d input padded by %dx%d",
                        d->kernel_h, d->kernel_w, L->in.h, L->in.w, d->pad_h, d->pad_w);
    L->out = nn_shape3(L->in.c, (int)oh, (int)ow);
    return NN_OK;
}

/* A pool's geometry, copied out of the layer so that the window loops keep it in
   registers (read through the layer, every store of the loop could alias it: that
   made MaxPool2d's forward ~1.5x slower). */
typedef struct nn__pool_geom { int H, W, kh, kw, sh, sw, ph, pw; } nn__pool_geom;

/* Window (oy, ox): its first row y0 and column x0 in the input (may be negative) and
   the range of kernel rows [ky0, ky1) and columns [kx0, kx1) inside the input. */
typedef struct nn__pool_win { int y0, x0, ky0, ky1, kx0, kx1; } nn__pool_win;

static nn__pool_geom nn__pool_geom_of(const nn_layer *L)
{
    const nn_layer_desc *d = &L->desc;
    nn__pool_geom g;
    g.H = L->in.h; g.W = L->in.w; g.kh = d->kernel_h; g.kw = d->kernel_w;
    g.sh = d->stride_h; g.sw = d->stride_w; g.ph = d->pad_h; g.pw = d->pad_w;
    return g;
}

static nn__pool_win nn__pool_window(nn__pool_geom g, int oy, int ox)
{
    nn__pool_win w;
    w.y0 = oy * g.sh - g.ph;
    w.x0 = ox * g.sw - g.pw;
    w.ky0 = w.y0 < 0 ? -w.y0 : 0;
    w.ky1 = w.y0 + g.kh > g.H ? g.H - w.y0 : g.kh;
    w.kx0 = w.x0 < 0 ? -w.x0 : 0;
    w.kx1 = w.x0 + g.kw > g.W ? g.W - w.x0 : g.kw;
    return w;
}

/* ---- MaxPool2d: y = max over each window; padding never wins (it is skipped) -------
   The first maximum in scan order (row by row) is the argmax a(i); its index within the
   plane is kept in the workspace (as a float: exact below 2^24). A NaN beats any
   number and the last NaN of a window is its argmax, as in PyTorch's CPU kernel.
   Backward: dx = 0, then dx[a(i)] += dy[i] for every output i (windows may overlap). */

static nn_status nn__maxpool2d_setup(nn_net *net, nn_layer *L)
{
    nn_status st = nn__pool_setup(net, L);
    if (st != NN_OK) return st;
    if ((size_t)L->in.h * L->in.w > ((size_t)1 << 24))
        return nn__fail(NN_ERR_ARG, "MaxPool2d: a %dx%d plane is too large", L->in.h, L->in.w);
    nn__plan_of(net, L)->work_size = nn_shape_size(L->out) * (size_t)net->max_batch;
    return NN_OK;
}

/* nn__maxpool2d_plane where no window is padded or clipped (the common case): the
   same scan, the same argmax, without the per-window bounds. */
static void nn__maxpool2d_inside(nn__pool_geom g, const float *xc, int oh, int ow, float *y, float *arg)
{
    int W = g.W, oy, ox, ky, kx;
    for (oy = 0; oy < oh; oy++)
        for (ox = 0; ox < ow; ox++) {
            int base = oy * g.sh * W + ox * g.sw, best_i = base;
            float best = xc[base], any_nan = 0.0f;
            for (ky = 0; ky < g.kh; ky++)
                for (kx = 0; kx < g.kw; kx++) {
                    int idx = base + ky * W + kx, better;
                    float v = xc[idx];
                    better = v > best;
                    best = better ? v : best;
                    best_i = better ? idx : best_i;
                    any_nan += 0.0f * v;
                }
            if (any_nan != any_nan)   /* the last NaN wins (see below) */
                for (ky = 0; ky < g.kh; ky++)
                    for (kx = 0; kx < g.kw; kx++) {
                        int idx = base + ky * W + kx;
                        if (xc[idx] != xc[idx]) { best = xc[idx]; best_i = idx; }
                    }
            *y++ = best;
            *arg++ = (float)best_i;
        }
}

static void nn__maxpool2d_plane(void *ctx, int c)
{
    const nn__layer_task *t = (const nn__layer_task *)ctx;
    const nn_layer *L = t->L;
    nn__pool_geom g = nn__pool_geom_of(L);
    int H = g.H, W = g.W, oh = L->out.h, ow = L->out.w, oy, ox, ky, kx;
    const float *xc = t->x + (size_t)c * H * W;
    float *y = t->out + (size_t)c * oh * ow, *arg = t->r->work + (size_t)c * oh * ow;
    if (!g.ph && !g.pw && (oh - 1) * g.sh + g.kh <= H && (ow - 1) * g.sw + g.kw <= W) {
        nn__maxpool2d_inside(g, xc, oh, ow, y, arg);
        return;
    }
    for (oy = 0; oy < oh; oy++)
        for (ox = 0; ox < ow; ox++) {
            nn__pool_win w = nn__pool_window(g, oy, ox);
            int y0 = w.y0, x0 = w.x0, ky0 = w.ky0, ky1 = w.ky1, kx0 = w.kx0, kx1 = w.kx1, best_i;
            float best, any_nan = 0.0f;
            best_i = (y0 + ky0) * W + x0 + kx0;   /* the first real pixel */
            best = xc[best_i];
            /* strict >: ties keep the first. 0 * v is NaN only for a NaN or an
               infinite v: then a second scan lets the last NaN win, as PyTorch's
               (val > max || isnan(val)) does (rare, so the common loop stays
               branch-free). */
            for (ky = ky0; ky < ky1; ky++)
                for (kx = kx0; kx < kx1; kx++) {
                    int idx = (y0 + ky) * W + x0 + kx, better;
                    float v = xc[idx];
                    better = v > best;
                    best = better ? v : best;
                    best_i = better ? idx : best_i;
                    any_nan += 0.0f * v;
                }
            if (any_nan != any_nan)
                for (ky = ky0; ky < ky1; ky++)
                    for (kx = kx0; kx < kx1; kx++) {
                        int idx = (y0 + ky) * W + x0 + kx;
                        if (xc[idx] != xc[idx]) { best = xc[idx]; best_i = idx; }
                    }
            *y++ = best;
            *arg++ = (float)best_i;
        }
}

static void nn__maxpool2d_forward(const nn__run *r, nn_layer *L, const float *x, float *y, int n)
{
    nn__layer_task t = nn__task(r, L, x, NULL, y, n);
    nn__parallel_items(n * L->in.c, nn__maxpool2d_plane, &t);
}

static void nn__maxpool2d_plane_backward(void *ctx, int c)
{
    const nn__layer_task *t = (const nn__layer_task *)ctx;
    size_t plane_in = (size_t)t->L->in.h * t->L->in.w, plane_out = (size_t)t->L->out.h * t->L->out.w, j;
    const float *arg = t->r->work + (size_t)c * plane_out, *g = t->dy + (size_t)c * plane_out;
    float *d = t->out + (size_t)c * plane_in;
    memset(d, 0, plane_in * sizeof(float));
    for (j = 0; j < plane_out; j++) d[(size_t)arg[j]] += g[j];
}

static void nn__maxpool2d_backward(const nn__run *r, nn_layer *L, const float *x, const float *y,
                                   const float *dy, float *dx, int n)
{
    nn__layer_task t = nn__task(r, L, x, dy, dx, n);
    (void)y;
    if (dx) nn__parallel_items(n * L->in.c, nn__maxpool2d_plane_backward, &t);
}

static const nn__layer_ops nn__maxpool2d_ops = {
    nn__maxpool2d_setup, NULL, nn__maxpool2d_forward, nn__maxpool2d_backward
};

/* ---- AvgPool2d: y = (1/q) * sum over each window --------------------------------
   count_include_pad = True (PyTorch's default): q counts the padded cells, the window
   clipped to the padded input (kh kw but where a ceil_mode window runs past the right
   or bottom padding); exclude_pad (count_include_pad = False): q counts the real
   pixels only. Backward: dx = 0, then dx[j] += dy[i] / q_i for every real pixel j of
   window i. */

/* 1/q of window w. */
static float nn__avgpool_scale(nn__pool_geom g, int exclude_pad, nn__pool_win w)
{
    int qh, qw;
    if (exclude_pad) {
        qh = w.ky1 - w.ky0;
        qw = w.kx1 - w.kx0;
    } else {
        int ye = g.H + g.ph - w.y0, xe = g.W + g.pw - w.x0;
        qh = g.kh < ye ? g.kh : ye;
        qw = g.kw < xe ? g.kw : xe;
    }
    return 1.0f / ((float)qh * (float)qw);
}

static void nn__avgpool2d_plane(void *ctx, int c)
{
    const nn__layer_task *t = (const nn__layer_task *)ctx;
    const nn_layer *L = t->L;
    nn__pool_geom g = nn__pool_geom_of(L);
    int W = g.W, oh = L->out.h, ow = L->out.w, exclude_pad = L->desc.exclude_pad, oy, ox, ky, kx;
    const float *xc = t->x + (size_t)c * g.H * W;
    float *y = t->out + (size_t)c * oh * ow;
    for (oy = 0; oy < oh; oy++)
        for (ox = 0; ox < ow; ox++) {
            nn__pool_win w = nn__pool_window(g, oy, ox);
            float sum = 0.0f;
            for (ky = w.ky0; ky < w.ky1; ky++)
                for (kx = w.kx0; kx < w.kx1; kx++) sum += xc[(w.y0 + ky) * W + w.x0 + kx];
            *y++ = sum * nn__avgpool_scale(g, exclude_pad, w);
        }
}

static void nn__avgpool2d_forward(const nn__run *r, nn_layer *L, const float *x, float *y, int n)
{
    nn__layer_task t = nn__task(r, L, x, NULL, y, n);
    nn__parallel(n * L->in.c, nn__avgpool2d_plane, &t);
}

static void nn__avgpool2d_plane_backward(void *ctx, int c)
{
    const nn__layer_task *t = (const nn__layer_task *)ctx;
    const nn_layer *L = t->L;
    nn__pool_geom g = nn__pool_geom_of(L);
    int W = g.W, oh = L->out.h, ow = L->out.w, exclude_pad = L->desc.exclude_pad, oy, ox, ky, kx;
    const float *dy = t->dy + (size_t)c * oh * ow;
    float *d = t->out + (size_t)c * g.H * W;
    memset(d, 0, (size_t)g.H * W * sizeof(float));
    for (oy = 0; oy < oh; oy++)
        for (ox = 0; ox < ow; ox++) {
            nn__pool_win w = nn__pool_window(g, oy, ox);
            float grad = *dy++ * nn__avgpool_scale(g, exclude_pad, w);
            for (ky = w.ky0; ky < w.ky1; ky++)
                for (kx = w.kx0; kx < w.kx1; kx++) d[(w.y0 + ky) * W + w.x0 + kx] += grad;
        }
}

static void nn__avgpool2d_backward(const nn__run *r, nn_layer *L, const float *x, const float *y,
                                   const float *dy, float *dx, int n)
{
    nn__layer_task t = nn__task(r, L, x, dy, dx, n);
    (void)y;
    if (dx) nn__parallel(n * L->in.c, nn__avgpool2d_plane_backward, &t);
}

static const nn__layer_ops nn__avgpool2d_ops = {
    nn__pool_setup, NULL, nn__avgpool2d_forward, nn__avgpool2d_backward
};

/* ---- Global average pooling: C x H x W -> C x 1 x 1, y[c] = mean of plane c --------
   Backward: dx[c, j] = dy[c] / (H W) for every pixel j. */

static nn_status nn__global_avgpool_setup(nn_net *net, nn_layer *L)
{
    (void)net;
    L->out = nn_shape1(L->in.c);
    return NN_OK;
}

static void nn__global_avgpool_forward(const nn__run *r, nn_layer *L, const float *x, float *y, int n)
{
    size_t hw = (size_t)L->in.h * L->in.w, j;
    int planes = n * L->in.c, c;
    (void)r;
    for (c = 0; c < planes; c++) {
        const float *xc = x + (size_t)c * hw;
        float sum = 0.0f;
        for (j = 0; j < hw; j++) sum += xc[j];
        y[c] = sum / (float)hw;
    }
}

static void nn__global_avgpool_backward(const nn__run *r, nn_layer *L, const float *x, const float *y,
                                        const float *dy, float *dx, int n)
{
    size_t hw = (size_t)L->in.h * L->in.w, j;
    int planes = n * L->in.c, c;
    (void)r; (void)x; (void)y;
    if (!dx) return;
    for (c = 0; c < planes; c++) {
        float g = dy[c] / (float)hw, *d = dx + (size_t)c * hw;
        for (j = 0; j < hw; j++) d[j] = g;
    }
}

static const nn__layer_ops nn__global_avgpool_ops = {
    nn__global_avgpool_setup, NULL, nn__global_avgpool_forward, nn__global_avgpool_backward
};

/* ---- BatchNorm: per channel c over the m = n*H*W values of the batch ---------------
   (C,1,1) input: BatchNorm1d over the batch; (C,H,W): BatchNorm2d over batch and space.
   Training: mu = mean(x), var = mean((x - mu)^2) (biased), s = 1/sqrt(var + eps),
   xhat = (x - mu) s, y = gamma xhat + beta; running_mean = (1 - a) rm + a mu,
   running_var = (1 - a) rv + a var m/(m-1) (unbiased), a the momentum (0.1) and eps
   1e-5 unless the desc sets them. Evaluation: mu, var = running. no_affine: gamma = 1,
   beta = 0, not parameters.
   Backward, per channel, sums over its m values:
   dgamma = sum(dy xhat),  dbeta = sum(dy),
   dx = (gamma s / m) (m dy - sum(dy) - xhat sum(dy xhat))   (training)
   dx = gamma s dy                                           (evaluation: mu, s constant)
   Workspace: the mean and s used by the last forward (2C floats), then 3C + 1 for the
   synchronised statistics (nn_set_sync_batchnorm, r->sync): the forward sums each
   channel's values with the count m (C + 1) across the processes, then the squared
   deviations from the global mean (C); the backward sum(dy) and sum(dy xhat) (2C), with
   the m of the forward. dgamma and dbeta stay this process's part of the sums: the
   gradient all-reduce adds the parts.
   Fused with a following ReLU (the plan's relu): the forward writes max(0, y), and the
   backward first masks dy with [y > 0], which is the ReLU's backward (NaN as the ReLU
   layer: y NaN stays NaN and passes dy); the arithmetic is
   that of the two layers, so the results are the same bits. It saves a read and a write
   of the activations in each direction and two activation-sized buffers. */

#define NN__BN_EPS 1e-5
#define NN__BN_MOMENTUM 0.1

static nn_status nn__batchnorm_setup(nn_net *net, nn_layer *L)
{
    int C = L->in.c;
    if (!(L->desc.momentum >= 0.0f && L->desc.momentum <= 1.0f) || !(L->desc.eps >= 0.0f))
        return nn__fail(NN_ERR_ARG, "BatchNorm: momentum %g and eps %g; expected 0 <= momentum <= 1 "
                        "and eps >= 0 (0: 0.1 and 1e-5)", (double)L->desc.momentum, (double)L->desc.eps);
    L->out = L->in;
    if (!L->desc.no_affine) {
        L->weight = nn__declare(net, L, "weight", 1, 1, C, 0, 0, 0);
        L->bias = nn__declare(net, L, "bias", 1, 1, C, 0, 0, 0);
    }
    L->running_mean = nn__declare(net, L, "running_mean", 0, 1, C, 0, 0, 0);
    L->running_var = nn__declare(net, L, "running_var", 0, 1, C, 0, 0, 0);
    nn__plan_of(net, L)->work_size = 5 * (size_t)C + 1;
    return NN_OK;
}

static void nn__batchnorm_init(nn_layer *L, nn_rng *rng)
{
    int c;
    (void)rng;
    for (c = 0; c < L->in.c; c++) {
        if (L->weight) {
            L->weight->value[c] = 1.0f;
            L->bias->value[c] = 0.0f;
        }
        L->running_mean->value[c] = 0.0f;
        L->running_var->value[c] = 1.0f;
    }
}

/* The phases of a synchronised BatchNorm's channel loops; NN__BN_LOCAL is all of it
   on this process's batch. */
enum { NN__BN_LOCAL, NN__BN_SUMS, NN__BN_DEVS, NN__BN_FINISH };
typedef struct { nn__layer_task t; int phase; } nn__bn_task;

/* Sums count values of a synchronised BatchNorm through the net's hook; after the
   first failure of a forward or backward it calls it no more, and that pass fails. */
static void nn__sync_sum(nn_net *net, float *buf, size_t count, const nn_layer *L, const char *what)
{
    int rc;
    if (net->sync_failed) return;
    if ((rc = net->allreduce(buf, count, net->allreduce_ctx)) != 0) {
        net->sync_failed = 1;
        nn__fail(NN_ERR_IO, "synchronised BatchNorm (layer %d): the all-reduce hook returned %d on "
                 "the %s (%lu values)", (int)(L - net->layers), rc, what, (unsigned long)count);
    }
}

static void nn__batchnorm_channel(void *ctx, int c)
{
    const nn__layer_task *t = (const nn__layer_task *)ctx;
    int phase = ((const nn__bn_task *)ctx)->phase;
    nn_layer *L = t->L;
    int C = L->in.c, i, n = t->n;
    size_t hw = (size_t)L->in.h * L->in.w, stride = (size_t)C * hw;
    const float *x = t->x;
    float *y = t->out, *mean = t->r->work, *invstd = t->r->work + C, a, b, mu_f;
    float *sums = t->r->work + 2 * C, *devs = t->r->work + 3 * C + 1;   /* synchronised */
    /* the defaults as doubles, so that they are PyTorch's 0.1 and 1e-5 exactly */
    double momentum = L->desc.momentum != 0.0f ? (double)L->desc.momentum : NN__BN_MOMENTUM;
    double eps = L->desc.eps != 0.0f ? (double)L->desc.eps : NN__BN_EPS;
    if (t->r->training) {
        /* Two passes: the mean, then the squared deviations; per image in float, across
           images in double (across processes in float, through the hook). */
        double m = (double)n * (double)hw, sum = 0.0, sq = 0.0, mu, var;
        if (phase == NN__BN_LOCAL || phase == NN__BN_SUMS)
            for (i = 0; i < n; i++) sum += nn__vsum(x + stride * i + hw * c, hw);
        if (phase == NN__BN_SUMS) {
            sums[c] = (float)sum;
            if (c == 0) sums[C] = (float)m;   /* exact below 2^24 values per process */
            return;
        }
        if (phase != NN__BN_LOCAL) {   /* the sums and the count of every process */
            m = (double)sums[C];
            sum = (double)sums[c];
        }
        mu = sum / m;
        if (phase == NN__BN_LOCAL || phase == NN__BN_DEVS)
            for (i = 0; i < n; i++) sq += nn__vsum_sq_dev(x + stride * i + hw * c, hw, (float)mu);
        if (phase == NN__BN_DEVS) {
            devs[c] = (float)sq;
            return;
        }
        if (phase == NN__BN_FINISH) sq = (double)devs[c];
        var = sq / m;
        mean[c] = (float)mu;
        invstd[c] = (float)(1.0 / sqrt(var + eps));
        L->running_mean->value[c] = (float)((1.0 - momentum) * L->running_mean->value[c] + momentum * mu);
        /* m = 1 has no unbiased variance (PyTorch refuses it); keep the biased 0. */
        L->running_var->value[c] = (float)((1.0 - momentum) * L->running_var->value[c] +
                                           momentum * (m > 1.0 ? sq / (m - 1.0) : var));
    } else {
        mean[c] = L->running_mean->value[c];
        invstd[c] = (float)(1.0 / sqrt((double)L->running_var->value[c] + eps));
    }
    /* y = a (x - mu) + beta with a = gamma s; not a x + (beta - a mu), which cancels
       catastrophically when |mu| is large against the spread. */
    a = L->weight ? L->weight->value[c] * invstd[c] : invstd[c];
    b = L->bias ? L->bias->value[c] : 0.0f;
    mu_f = mean[c];
    for (i = 0; i < n; i++)
        nn__vaffine(y + stride * i + hw * c, x + stride * i + hw * c, hw, a, mu_f, b, t->r->p->relu);
}

static void nn__batchnorm_forward(const nn__run *r, nn_layer *L, const float *x, float *y, int n)
{
    nn__bn_task t;
    int C = L->in.c;
    t.t = nn__task(r, L, x, NULL, y, n);
    t.phase = r->sync && r->training ? NN__BN_SUMS : NN__BN_LOCAL;
    nn__parallel(C, nn__batchnorm_channel, &t);
    if (t.phase == NN__BN_LOCAL) return;
    nn__sync_sum(r->sync, r->work + 2 * C, (size_t)C + 1, L, "sums and count of the forward");
    t.phase = NN__BN_DEVS;
    nn__parallel(C, nn__batchnorm_channel, &t);
    nn__sync_sum(r->sync, r->work + 3 * C + 1, (size_t)C, L, "squared deviations of the forward");
    t.phase = NN__BN_FINISH;
    nn__parallel(C, nn__batchnorm_channel, &t);
}

static void nn__batchnorm_channel_backward(void *ctx, int c)
{
    const nn__layer_task *t = (const nn__layer_task *)ctx;
    int phase = ((const nn__bn_task *)ctx)->phase;
    nn_layer *L = t->L;
    int C = L->in.c, i, n = t->n;
    size_t hw = (size_t)L->in.h * L->in.w, stride = (size_t)C * hw;
    const float *x = t->x, *dy = t->dy, *y = t->y;
    double sum_dy = 0.0, sum_dy_xhat = 0.0, m = (double)n * (double)hw;
    float mu = t->r->work[c], s = t->r->work[C + c], gs = L->weight ? L->weight->value[c] * s : s, k1, k2;
    float *sums = t->r->work + 3 * C + 1;   /* synchronised: sum(dy), then sum(dy xhat) */
    /* With a fused ReLU, g = dy [y > 0] is formed on the fly in both passes (a channel's
       values are still in the cache for the second). */
    if (phase != NN__BN_FINISH) {
        for (i = 0; i < n; i++) {
            size_t at = stride * i + hw * c;
            float sd, sdx;
            nn__vsum_grad(dy + at, t->r->p->relu ? y + at : NULL, x + at, hw, mu, &sd, &sdx);
            sum_dy += sd;
            sum_dy_xhat += (double)sdx * s;
        }
        if (L->weight) {
            L->weight->grad[c] = (float)sum_dy_xhat;
            L->bias->grad[c] = (float)sum_dy;
        }
    }
    if (!t->out) return;
    if (phase == NN__BN_SUMS) {
        sums[c] = (float)sum_dy;
        sums[C + c] = (float)sum_dy_xhat;
        return;
    }
    if (phase == NN__BN_FINISH) {   /* every process's sums, over the global batch's m */
        sum_dy = (double)sums[c];
        sum_dy_xhat = (double)sums[C + c];
        m = (double)t->r->work[3 * C];
    }
    /* dx = gs dy - gs sum(dy)/m - gs s (x - mu) sum(dy xhat)/m
          = gs dy + k1 (x - mu) + k2;  in evaluation k1 = k2 = 0, and the k1 term is left
       out: a NaN x then has the gradient gs dy, as in PyTorch */
    k1 = t->r->training ? (float)(-gs * s * sum_dy_xhat / m) : 0.0f;
    k2 = t->r->training ? (float)(-gs * sum_dy / m) : 0.0f;
    for (i = 0; i < n; i++) {
        size_t at = stride * i + hw * c;
        nn__vaxpy_dev(t->out + at, gs, dy + at, t->r->p->relu ? y + at : NULL,
                      t->r->training ? x + at : NULL, hw, k1, mu, k2);
    }
}

static void nn__batchnorm_backward(const nn__run *r, nn_layer *L, const float *x, const float *y,
                                   const float *dy, float *dx, int n)
{
    nn__bn_task t;
    int C = L->in.c;
    t.t = nn__task(r, L, x, dy, dx, n);
    t.t.y = y;   /* the ReLU's output when it is fused */
    t.phase = r->sync && r->training && dx ? NN__BN_SUMS : NN__BN_LOCAL;
    nn__parallel(C, nn__batchnorm_channel_backward, &t);
    if (t.phase == NN__BN_LOCAL) return;
    nn__sync_sum(r->sync, r->work + 3 * C + 1, 2 * (size_t)C, L, "gradient sums of the backward");
    t.phase = NN__BN_FINISH;
    nn__parallel(C, nn__batchnorm_channel_backward, &t);
}

static const nn__layer_ops nn__batchnorm_ops = {
    nn__batchnorm_setup, nn__batchnorm_init, nn__batchnorm_forward, nn__batchnorm_backward
};

/* ---- Sigmoid: y = 1/(1 + e^-x);  dx = dy y (1 - y) ---------------------------------- */

static void nn__sigmoid_forward(const nn__run *r, nn_layer *L, const float *x, float *y, int n)
{
    size_t i, count = (size_t)n * nn_shape_size(L->in);
    (void)r;
    for (i = 0; i < count; i++) {
        float e = expf(-fabsf(x[i]));            /* never overflows */
        y[i] = x[i] >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e);
    }
}

static void nn__sigmoid_backward(const nn__run *r, nn_layer *L, const float *x, const float *y,
                                 const float *dy, float *dx, int n)
{
    size_t i, count = (size_t)n * nn_shape_size(L->in);
    (void)r; (void)x;
    if (!dx) return;
    for (i = 0; i < count; i++) dx[i] = dy[i] * y[i] * (1.0f - y[i]);
}

static const nn__layer_ops nn__sigmoid_ops = {
    nn__same_shape_setup, NULL, nn__sigmoid_forward, nn__sigmoid_backward
};

/* ---- Tanh: y = tanh(x);  dx = dy (1 - y^2) ------------------------------------------ */

static void nn__tanh_forward(const nn__run *r, nn_layer *L, const float *x, float *y, int n)
{
    size_t i, count = (size_t)n * nn_shape_size(L->in);
    (void)r;
    for (i = 0; i < count; i++) y[i] = tanhf(x[i]);
}

static void nn__tanh_backward(const nn__run *r, nn_layer *L, const float *x, const float *y,
                              const float *dy, float *dx, int n)
{
    size_t i, count = (size_t)n * nn_shape_size(L->in);
    (void)r; (void)x;
    if (!dx) return;
    for (i = 0; i < count; i++) dx[i] = dy[i] * (1.0f - y[i] * y[i]);
}

static const nn__layer_ops nn__tanh_ops = {
    nn__same_shape_setup, NULL, nn__tanh_forward, nn__tanh_backward
};

/* ---- GELU -----------------------------------------------------------------------------
   Exact:  y = x Phi(x), Phi(x) = (1 + erf(x/sqrt 2))/2;  f'(x) = Phi(x) + x phi(x),
           phi(x) = e^(-x^2/2) / sqrt(2 pi).
   Tanh approximation (desc.approximate): u = sqrt(2/pi) (x + 0.044715 x^3), t = tanh(u),
           y = x (1 + t)/2;  f'(x) = (1 + t)/2 + x (1 - t^2) sqrt(2/pi) (1 + 3 0.044715 x^2)/2.
   Backward: dx = dy f'(x). */

#define NN__SQRT_2_PI 0.7978845608028654f    /* sqrt(2/pi) */
#define NN__INV_SQRT_2 0.7071067811865476f

/* Element-wise layers run in chunks of this many floats, spread over the threads
   (each element's value does not depend on the split). */
#define NN__LAYER_CHUNK 16384

static size_t nn__chunk_range(const nn__layer_task *t, int item, size_t *end)
{
    size_t count = (size_t)t->n * nn_shape_size(t->L->in), at = (size_t)item * NN__LAYER_CHUNK;
    *end = count - at < NN__LAYER_CHUNK ? count : at + NN__LAYER_CHUNK;
    return at;
}

static int nn__chunks(const nn_layer *L, int n)
{
    return (int)(((size_t)n * nn_shape_size(L->in) + NN__LAYER_CHUNK - 1) / NN__LAYER_CHUNK);
}

static void nn__gelu_forward_chunk(void *ctx, int item)
{
    const nn__layer_task *t = (const nn__layer_task *)ctx;
    const float *x = t->x;
    float *y = t->out;
    size_t end, i = nn__chunk_range(t, item, &end);
    if (t->L->desc.approximate) {
        for (; i < end; i++) {
            float v = x[i], u = tanhf(NN__SQRT_2_PI * (v + 0.044715f * v * v * v));
            y[i] = 0.5f * v * (1.0f + u);
        }
    } else {
        nn__vgelu(y + i, x + i, end - i);
    }
}

static void nn__gelu_backward_chunk(void *ctx, int item)
{
    const nn__layer_task *t = (const nn__layer_task *)ctx;
    const float *x = t->x, *dy = t->dy;
    float *dx = t->out;
    size_t end, i = nn__chunk_range(t, item, &end);
    if (t->L->desc.approximate) {
        for (; i < end; i++) {
            float v = x[i], u = tanhf(NN__SQRT_2_PI * (v + 0.044715f * v * v * v));
            float du = NN__SQRT_2_PI * (1.0f + 3.0f * 0.044715f * v * v);
            dx[i] = dy[i] * (0.5f * (1.0f + u) + 0.5f * v * (1.0f - u * u) * du);
        }
    } else {
        nn__vgelu_grad(dx + i, x + i, dy + i, end - i);
    }
}

static void nn__gelu_forward(const nn__run *r, nn_layer *L, const float *x, float *y, int n)
{
    nn__layer_task t = nn__task(r, L, x, NULL, y, n);
    nn__parallel_items(nn__chunks(L, n), nn__gelu_forward_chunk, &t);
}

static void nn__gelu_backward(const nn__run *r, nn_layer *L, const float *x, const float *y,
                              const float *dy, float *dx, int n)
{
    nn__layer_task t = nn__task(r, L, x, dy, dx, n);
    (void)y;
    if (dx) nn__parallel_items(nn__chunks(L, n), nn__gelu_backward_chunk, &t);
}

static const nn__layer_ops nn__gelu_ops = {
    nn__same_shape_setup, NULL, nn__gelu_forward, nn__gelu_backward
};

/* ---- Softplus(beta, threshold): y = log(1 + e^(beta x))/beta, or x where
   beta x > threshold (PyTorch's defaults beta 1, threshold 20 replace zero fields).
   Backward: dx = dy sigmoid(beta x), or dy above the threshold. */

static nn_status nn__softplus_setup(nn_net *net, nn_layer *L)
{
    if (L->desc.beta == 0.0f) L->desc.beta = 1.0f;
    if (L->desc.threshold == 0.0f) L->desc.threshold = 20.0f;
    if (!isfinite(L->desc.beta) || !isfinite(L->desc.threshold))
        return nn__fail(NN_ERR_ARG, "Softplus: beta %g and threshold %g must be finite",
                        L->desc.beta, L->desc.threshold);
    return nn__same_shape_setup(net, L);
}

static void nn__softplus_forward(const nn__run *r, nn_layer *L, const float *x, float *y, int n)
{
    size_t i, count = (size_t)n * nn_shape_size(L->in);
    float beta = L->desc.beta, threshold = L->desc.threshold;
    (void)r;
    for (i = 0; i < count; i++) {
        float z = beta * x[i];
        y[i] = z > threshold ? x[i] : log1pf(expf(z)) / beta;
    }
}

static void nn__softplus_backward(const nn__run *r, nn_layer *L, const float *x, const float *y,
                                  const float *dy, float *dx, int n)
{
    size_t i, count = (size_t)n * nn_shape_size(L->in);
    float beta = L->desc.beta, threshold = L->desc.threshold;
    (void)r; (void)y;
    if (!dx) return;
    for (i = 0; i < count; i++) {
        float z = beta * x[i], e = expf(-fabsf(z));
        float sig = z >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e);
        dx[i] = z > threshold ? dy[i] : dy[i] * sig;
    }
}

static const nn__layer_ops nn__softplus_ops = {
    nn__softplus_setup, NULL, nn__softplus_forward, nn__softplus_backward
};

/* ---- Scale(a): y = a x;  dx = a dy (with ReLU: f = 3 ReLU) -------------------------- */

static void nn__scale_forward(const nn__run *r, nn_layer *L, const float *x, float *y, int n)
{
    size_t i, count = (size_t)n * nn_shape_size(L->in);
    float a = L->desc.factor;
    (void)r;
    for (i = 0; i < count; i++) y[i] = a * x[i];
}

static void nn__scale_backward(const nn__run *r, nn_layer *L, const float *x, const float *y,
                               const float *dy, float *dx, int n)
{
    size_t i, count = (size_t)n * nn_shape_size(L->in);
    float a = L->desc.factor;
    (void)r; (void)x; (void)y;
    if (!dx) return;
    for (i = 0; i < count; i++) dx[i] = a * dy[i];
}

static const nn__layer_ops nn__scale_ops = {
    nn__same_shape_setup, NULL, nn__scale_forward, nn__scale_backward
};

/* ---- Dropout(p), inverted: in training y = x m with m = 1/(1-p) with probability 1-p
   and 0 otherwise, drawn from r->rng (one uniform per element, kept when >= p);
   the identity in evaluation. Backward: dx = dy m (training), dy (evaluation).
   Workspace: the mask of the last training forward (max_batch x size floats). */

static nn_status nn__dropout_setup(nn_net *net, nn_layer *L)
{
    float p = L->desc.p;
    if (!(p >= 0.0f && p < 1.0f))
        return nn__fail(NN_ERR_ARG, "Dropout: p = %g, expected 0 <= p < 1", p);
    L->out = L->in;
    nn__plan_of(net, L)->work_size = nn_shape_size(L->in) * (size_t)net->max_batch;
    return NN_OK;
}

static void nn__dropout_forward(const nn__run *r, nn_layer *L, const float *x, float *y, int n)
{
    size_t i, count = (size_t)n * nn_shape_size(L->in);
    float p = L->desc.p, keep = 1.0f / (1.0f - p), *mask = r->work;
    if (!r->training || p == 0.0f) {
        memcpy(y, x, count * sizeof(float));
        return;
    }
    for (i = 0; i < count; i++) mask[i] = nn_rng_uniform(r->rng) >= p ? keep : 0.0f;
    for (i = 0; i < count; i++) y[i] = x[i] * mask[i];
}

static void nn__dropout_backward(const nn__run *r, nn_layer *L, const float *x, const float *y,
                                 const float *dy, float *dx, int n)
{
    size_t i, count = (size_t)n * nn_shape_size(L->in);
    const float *mask = r->work;
    (void)x; (void)y;
    if (!dx) return;
    if (!r->training || L->desc.p == 0.0f) {
        memcpy(dx, dy, count * sizeof(float));
        return;
    }
    for (i = 0; i < count; i++) dx[i] = dy[i] * mask[i];
}

static const nn__layer_ops nn__dropout_ops = {
    nn__dropout_setup, NULL, nn__dropout_forward, nn__dropout_backward
};

/* ==== LAYERS-END ==== */

static nn__layer_ops const *nn__ops(nn_layer_kind kind)
{
    switch (kind) {
    case NN_LINEAR: return &nn__linear_ops;
    case NN_RELU: return &nn__relu_ops;
    case NN_LEAKY_RELU: return &nn__leaky_relu_ops;
    case NN_FLATTEN: return &nn__flatten_ops;
    case NN_CONV2D: return &nn__conv2d_ops;
    case NN_MAXPOOL2D: return &nn__maxpool2d_ops;
    case NN_AVGPOOL2D: return &nn__avgpool2d_ops;
    case NN_GLOBAL_AVGPOOL: return &nn__global_avgpool_ops;
    case NN_BATCHNORM: return &nn__batchnorm_ops;
    case NN_SIGMOID: return &nn__sigmoid_ops;
    case NN_TANH: return &nn__tanh_ops;
    case NN_GELU: return &nn__gelu_ops;
    case NN_SOFTPLUS: return &nn__softplus_ops;
    case NN_SCALE: return &nn__scale_ops;
    case NN_DROPOUT: return &nn__dropout_ops;
    case NN_HARDTANH: return &nn__hardtanh_ops;
    default: return NULL;
    }
}

/* =================================================================================
   LOSSES
   ================================================================================= */

/* The losses' argument check: both arrays given and something to average over; else
   the error is set and the loss is NaN. */
static int nn__loss_args_bad(const char *fn, const void *input, const void *target,
                             size_t count, int classes)
{
    if (!input || !target || count == 0 || classes <= 0) {
        nn__fail(NN_ERR_ARG, "%s: %s", fn, !input || !target ? "an input or target array is NULL"
                                                             : "nothing to average over (n or classes < 1)");
        return 1;
    }
    return 0;
}

/* 1 (with the error set) if a label lies outside [0, classes); checked for all samples
   first, so that a refused call writes no gradient. */
static int nn__labels_bad(const int *labels, int n, int classes)
{
    int i;
    for (i = 0; i < n; i++)
        if (labels[i] < 0 || labels[i] >= classes) {
            nn__fail(NN_ERR_ARG, "cross-entropy: label %d of sample %d is outside [0, %d)",
                     labels[i], i, classes);
            return 1;
        }
    return 0;
}

/* log sum_j exp(z_j), shifted by the largest z_j, summed in double. */
static double nn__log_sum_exp(const float *z, int classes)
{
    float zmax = z[0];
    double sum = 0.0;
    int j;
    for (j = 1; j < classes; j++) if (z[j] > zmax) zmax = z[j];
    for (j = 0; j < classes; j++) sum += exp((double)(z[j] - zmax));
    return zmax + log(sum);
}

/* Softmax cross-entropy, fused and stable: with lse = log sum_j exp(z_j),
   loss_i = lse_i - z_i[label_i], and dLoss/dz = (softmax(z) - onehot) / n.
   A NaN or +inf logit makes its row's loss and gradient NaN; a -inf logit has
   probability 0 (the loss is +inf if it is the label's), as in PyTorch. */
NNDEF float nn_softmax_cross_entropy(const float *logits, const int *labels, int n,
                                     int classes, float *grad)
{
    nn__error_clear();
    double total = 0.0;
    int i, j;
    if (nn__loss_args_bad("cross-entropy", logits, labels, n > 0 ? (size_t)n : 0, classes)) return NAN;
    if (nn__labels_bad(labels, n, classes)) return NAN;
    for (i = 0; i < n; i++) {
        const float *z = logits + (size_t)i * classes;
        float *g = grad ? grad + (size_t)i * classes : NULL;
        double lse = nn__log_sum_exp(z, classes);
        total += lse - z[labels[i]];
        if (g) {
            for (j = 0; j < classes; j++)
                g[j] = (float)(exp((double)z[j] - lse) / n);
            g[labels[i]] -= 1.0f / (float)n;
        }
    }
    return (float)(total / n);
}

/* The smoothed target: q = (1 - eps) onehot + eps/K; loss_i = lse_i - sum_j q_j z_ij
   written as (1 - eps)(lse - z_y) + eps/K sum_j (lse - z_j), PyTorch's two terms, so
   a -inf logit gives +inf (not inf - inf). Sums in double, as the plain one. */
NNDEF float nn_softmax_cross_entropy_smooth(const float *logits, const int *labels, int n,
                                            int classes, float smoothing, float *grad)
{
    nn__error_clear();
    double total = 0.0, eps = smoothing, spread = eps / (classes > 0 ? classes : 1);
    int i, j;
    if (nn__loss_args_bad("cross-entropy", logits, labels, n > 0 ? (size_t)n : 0, classes)) return NAN;
    if (!(smoothing >= 0.0f && smoothing <= 1.0f)) {
        nn__fail(NN_ERR_ARG, "cross-entropy: label smoothing %g, expected 0..1", smoothing);
        return NAN;
    }
    if (smoothing == 0.0f) return nn_softmax_cross_entropy(logits, labels, n, classes, grad);
    if (nn__labels_bad(labels, n, classes)) return NAN;
    for (i = 0; i < n; i++) {
        const float *z = logits + (size_t)i * classes;
        float *g = grad ? grad + (size_t)i * classes : NULL;
        double lse = nn__log_sum_exp(z, classes), all = 0.0;
        for (j = 0; j < classes; j++) all += lse - z[j];
        total += (1.0 - eps) * (lse - z[labels[i]]) + spread * all;
        if (g) {
            for (j = 0; j < classes; j++)
                g[j] = (float)((exp((double)z[j] - lse) - spread - (j == labels[i] ? 1.0 - eps : 0.0)) / n);
        }
    }
    return (float)(total / n);
}

/* With probability targets t (each row sums to 1): loss_i = -sum_j t_ij log softmax_ij,
   dLoss/dz = (softmax(z) - t) / n. A row whose targets are not all finite gets
   PyTorch's (softmax(z) sum_j t_j - t) / n, so NaN and infinity land where they do
   there (a NaN target: the whole row NaN); a -inf logit with target 0 makes the loss
   NaN (0 log 0) and leaves the gradient finite, as in PyTorch. */
NNDEF float nn_softmax_cross_entropy_soft(const float *logits, const float *targets,
                                          int n, int classes, float *grad)
{
    nn__error_clear();
    double total = 0.0;
    int i, j;
    if (nn__loss_args_bad("soft cross-entropy", logits, targets, n > 0 ? (size_t)n : 0, classes)) return NAN;
    for (i = 0; i < n; i++) {
        const float *z = logits + (size_t)i * classes, *t = targets + (size_t)i * classes;
        float zmax = z[0];
        double sum = 0.0, lse;
        double tsum = 0.0;
        for (j = 1; j < classes; j++) if (z[j] > zmax) zmax = z[j];
        for (j = 0; j < classes; j++) sum += exp((double)(z[j] - zmax));
        lse = zmax + log(sum);
        for (j = 0; j < classes; j++) tsum += t[j];
        for (j = 0; j < classes; j++) {
            double p = exp((double)z[j] - lse);
            total += t[j] * (lse - z[j]);
            if (grad) grad[(size_t)i * classes + j] = (float)((isfinite(tsum) ? p - t[j] : p * tsum - t[j]) / n);
        }
    }
    return (float)(total / n);
}

/* MSE: mean (or sum) of (p - t)^2;  dLoss/dp = 2 (p - t) / count (or 2 (p - t)).
   NaN, and inf - inf, give NaN there, as in PyTorch. */
NNDEF float nn_mse(const float *pred, const float *target, size_t count, int sum, float *grad)
{
    nn__error_clear();
    double total = 0.0, scale = sum ? 1.0 : 1.0 / (double)count;
    size_t i;
    if (nn__loss_args_bad("MSE", pred, target, count, 1)) return NAN;
    for (i = 0; i < count; i++) {
        double d = (double)pred[i] - target[i];
        total += d * d;
        if (grad) grad[i] = (float)(2.0 * d * scale);
    }
    return (float)(total * scale);
}

/* Binary cross-entropy on probabilities, mean over elements; the logs are clamped at
   -100 as PyTorch does, so p = 0 or 1 gives a finite loss.
   dLoss/dp = (p - t) / (p (1 - p)) / count, with p(1-p) kept above 1e-12.
   A probability outside [0, 1] or NaN (which PyTorch refuses with an error) makes the
   loss NaN, its gradient NaN and sets nn_error(); a NaN or infinite target gives NaN
   and infinities as in PyTorch. */
NNDEF float nn_bce(const float *prob, const float *target, size_t count, float *grad)
{
    nn__error_clear();
    double total = 0.0;
    size_t i;
    if (nn__loss_args_bad("BCE", prob, target, count, 1)) return NAN;
    for (i = 0; i < count; i++) {
        double p = prob[i], t = target[i];
        if (!(p >= 0.0 && p <= 1.0)) {
            nn__fail(NN_ERR_ARG, "nn_bce: probability %g at %lu is outside [0, 1]", p, (unsigned long)i);
            total = NAN;
            if (grad) grad[i] = NAN;
            continue;
        }
        double logp = p > 0.0 ? log(p) : -100.0, log1mp = p < 1.0 ? log(1.0 - p) : -100.0;
        if (logp < -100.0) logp = -100.0;
        if (log1mp < -100.0) log1mp = -100.0;
        total -= t * logp + (1.0 - t) * log1mp;
        if (grad) {
            double denom = p * (1.0 - p);
            grad[i] = (float)((p - t) / (denom > 1e-12 ? denom : 1e-12) / (double)count);
        }
    }
    return (float)(total / (double)count);
}

/* BCE with logits, stable: loss = max(z, 0) - z t + log(1 + exp(-|z|)),
   dLoss/dz = (sigmoid(z) - t) / count. An infinite z takes PyTorch's form,
   (1 - t) z + m + log(e^-m + e^(-z-m)) with m = max(-z, 0), so that its NaN and
   infinities are PyTorch's (z = +inf: +inf, NaN for t = 1; z = -inf: NaN). */
NNDEF float nn_bce_with_logits(const float *logits, const float *target, size_t count,
                               float *grad)
{
    nn__error_clear();
    double total = 0.0;
    size_t i;
    if (nn__loss_args_bad("BCE with logits", logits, target, count, 1)) return NAN;
    for (i = 0; i < count; i++) {
        double z = logits[i], t = target[i], m = -z > 0.0 ? -z : 0.0;
        if (isinf(z)) total += (1.0 - t) * z + m + log(exp(-m) + exp(-z - m));
        else total += (z > 0.0 ? z : 0.0) - z * t + log1p(exp(-fabs(z)));
        if (grad) grad[i] = (float)((1.0 / (1.0 + exp(-z)) - t) / (double)count);
    }
    return (float)(total / (double)count);
}

/* ==== LOSSES-END ==== */

/* =================================================================================
   NETWORKS AND OPTIMISERS
   ================================================================================= */

/* ---- The plan ----------------------------------------------------------------------
   nn_build infers every shape and makes one plan: for every layer, the tensor that is
   its input x, its output y, the gradient dx it writes for its input, the gradient dy
   of its output it reads, and its workspace. A tensor is a size in a table; the arena
   is one allocation holding them all, each at an offset rounded up to 64 bytes
   (llm.c's table of activation sizes and its single allocation), and the pointers are
   set from the offsets. Two tensors are not in the arena: the x of the last
   nn_forward (NN__T_INPUT) and the dy of the last nn_backward (NN__T_DOUT).
   - A view (Flatten), NN_BLOCK and NN_SHORTCUT run nothing: y = x (NN_SHORTCUT's y is
     its block's input, which the shortcut path reads), dx = dy.
   - A BatchNorm followed by a ReLU applies it (the same arithmetic, the same bits):
     the ReLU runs nothing, its output is the BatchNorm's output and its dx its dy, so
     the BatchNorm reads the ReLU's dy and masks it by [y > 0] itself.
   - A block: NN_BLOCK_END reads x2 = main(x) and x = shortcut(x) (the block's input
     when there is no shortcut path) and writes y = x2 + x, then ReLU'd if asked; its
     dx is g = dy [y > 0] (as the ReLU layer) or dy itself, the dy of both paths' last
     layers (or of NN_BLOCK for an empty path). NN_BLOCK writes dx = dy + dy2, the
     block input's gradients through the main path and through the shortcut.
   - A layer gets a dx only where a layer before it in the data flow has parameters,
     or nn_set_input_grad asked ("up"); a layer without parameters and dx has no
     backward to run.
   For training every output, input gradient and workspace is a tensor of its own
   (the backward reads the forward's outputs). nn_inference_only plans again without
   gradients: an output lives from the layer that writes it to its last reader (a
   block's input so to the block's end, the net's output to the end) and takes the
   first free of a few slots of the largest output's size (two for a plain stack); all
   workspaces share one tensor. The shared scratch of the convolutions (net->scratch)
   is outside the arena. */

static void nn__tplan_free(nn__tplan *t)
{
    nn__free(t->size);
    nn__free(t->at);
    nn__free(t->ptr);
    memset(t, 0, sizeof *t);
}

NNDEF nn_net *nn_net_new(nn_shape input)
{
    nn__error_clear();
    nn_net *net;
    if (nn_shape_size(input) == 0) {
        nn__fail(NN_ERR_ARG, "nn_net_new: input shape %dx%dx%d, expected positive sizes",
                 input.c, input.h, input.w);
        return NULL;
    }
    net = (nn_net *)nn__calloc(1, sizeof *net);
    if (!net) { nn__fail(NN_ERR_NOMEM, "nn_net_new: out of memory"); return NULL; }
    net->input = input;
    net->training = 1;
    return net;
}

/* Frees the arena (every layer output, input gradient and workspace, the loss
   gradient) and the tensor table. */
static void nn__net_release_arena(nn_net *net)
{
    nn__free(net->arena);
    nn__free(net->tp.size);
    nn__free(net->tp.at);
    nn__free(net->tp.ptr);
    memset(&net->tp, 0, sizeof net->tp);
    net->arena = NULL;
    net->loss_grad = NULL;
}

static void nn__net_release_grads(nn_net *net)
{
    int i;
    for (i = 0; i < net->num_params; i++) {
        nn__free(net->params[i].grad);
        net->params[i].grad = NULL;
    }
}

static void nn__net_release_buffers(nn_net *net)
{
    int i;
    nn__net_release_arena(net);
    nn__net_release_grads(net);
    for (i = 0; i < net->num_layers; i++) {
        nn_layer *L = &net->layers[i];
        L->weight = L->bias = L->running_mean = L->running_var = NULL;
    }
    for (i = 0; i < net->num_params; i++) nn__free(net->params[i].value);
    nn__free(net->params);
    nn__free(net->scratch);
    nn__free(net->plan);
    net->params = NULL;
    net->scratch = NULL;
    net->plan = NULL;
    net->scratch_size = 0;
    net->num_params = 0;
    net->built = 0;
    net->inference = 0;
    net->batch = 0;
    net->backward_done = 0;
}

NNDEF void nn_net_free(nn_net *net)
{
    if (!net) return;
    nn__net_release_buffers(net);
    nn__qnet_free(net->q);
    nn__free(net->layers);
    nn__free(net->preprocess_mean);
    nn__free(net->preprocess_std);
    nn__free(net->class_names);
    nn__free(net->bucket);
    nn__free(net);
}

/* A layer name: 1 .. NN_MAX_NAME - 1 - NN__LONGEST_SUFFIX bytes of letters, digits,
   '_', '-' and '.', which a model file's layer text and a JSON key hold as they are;
   not beginning "optimizer.m." or "optimizer.v." (a checkpoint's moment keys). */
static nn_status nn__name_check(const char *name)
{
    size_t i, len;
    if (!name) return NN_OK;
    len = strlen(name);
    if (len == 0 || len > NN_MAX_NAME - 1 - NN__LONGEST_SUFFIX)
        return nn__fail(NN_ERR_ARG, "nn_add: the name '%.*s' has %lu bytes, expected 1 to %d (with "
                        "\".num_batches_tracked\" it must fit NN_MAX_NAME)", NN_MAX_NAME, name,
                        (unsigned long)len, NN_MAX_NAME - 1 - NN__LONGEST_SUFFIX);
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return nn__fail(NN_ERR_ARG, "nn_add: the name '%s' holds the byte 0x%02x at %lu; a name "
                            "is letters, digits, '_', '-' and '.'", name, c, (unsigned long)i);
    }
    if (!strncmp(name, "optimizer.m.", 12) || !strncmp(name, "optimizer.v.", 12))
        return nn__fail(NN_ERR_ARG, "nn_add: the name '%s' begins as the keys of a checkpoint's optimiser "
                        "moments (optimizer.m.<parameter>, optimizer.v.<parameter>)", name);
    return NN_OK;
}

/* The options other than the sizes that every kind has read (out, kernel_h, stride_h,
   pad_h, no_bias, approximate, as files before 0.3 may hold them anywhere) must be
   zero on the kinds that do not have them: set elsewhere they would be ignored. */
static nn_status nn__options_fit(const nn_layer_desc *d)
{
    enum { CONV = 1 << NN_CONV2D, POOL = 1 << NN_MAXPOOL2D | 1 << NN_AVGPOOL2D, AVG = 1 << NN_AVGPOOL2D,
           BN = 1 << NN_BATCHNORM };
    const struct { const char *field; int set, kinds; } options[] = {
        {"kernel_w", d->kernel_w != 0 && d->kernel_w != d->kernel_h, CONV | POOL},
        {"stride_w", d->stride_w != 0 && d->stride_w != d->stride_h, CONV | POOL},
        {"pad_w", d->pad_w != 0 && d->pad_w != d->pad_h, CONV | POOL},
        {"dilation_h", d->dilation_h > 1, CONV}, {"dilation_w", d->dilation_w > 1, CONV},
        {"groups", d->groups > 1, CONV}, {"ceil_mode", d->ceil_mode, POOL},
        {"exclude_pad", d->exclude_pad, AVG}, {"no_affine", d->no_affine, BN},
        {"momentum", d->momentum != 0.0f, BN}, {"eps", d->eps != 0.0f, BN},
        {"relu", d->relu, 1 << NN_BLOCK_END}, {"negative_slope", d->negative_slope != 0.0f, 1 << NN_LEAKY_RELU},
        {"factor", d->factor != 0.0f, 1 << NN_SCALE}, {"p", d->p != 0.0f, 1 << NN_DROPOUT},
        {"beta", d->beta != 0.0f, 1 << NN_SOFTPLUS}, {"threshold", d->threshold != 0.0f, 1 << NN_SOFTPLUS},
        {"min_val", d->min_val != 0.0f, 1 << NN_HARDTANH}, {"max_val", d->max_val != 0.0f, 1 << NN_HARDTANH}
    };
    size_t i;
    for (i = 0; i < sizeof options / sizeof options[0]; i++)
        if (options[i].set && !(options[i].kinds & 1 << d->kind))
            return nn__fail(NN_ERR_ARG, "nn_add: a %s layer has no option %s (it is set)",
                            nn_layer_name(d->kind), options[i].field);
    return NN_OK;
}

NNDEF nn_status nn_add(nn_net *net, nn_layer_desc layer)
{
    nn__error_clear();
    nn_layer *L;
    nn_status st;
    char name[NN_MAX_NAME];   /* the name may be in the layers array that grows below */
    int i;
    if (!net) return nn__fail(NN_ERR_ARG, "nn_add: net is NULL");
    if (net->built) return nn__fail(NN_ERR_STATE, "nn_add: the net is already built");
    if (layer.kind <= 0 || layer.kind >= NN_LAYER_KIND_COUNT)
        return nn__fail(NN_ERR_ARG, "nn_add: unknown layer kind %d", (int)layer.kind);
    /* The ranges a model file may hold, so that every net that is built can be saved
       and loaded again; each layer's setup checks what its kind needs on top. */
    if (layer.out < 0 || layer.kernel_h < 0 || layer.kernel_w < 0 || layer.stride_h < 0 ||
        layer.stride_w < 0 || layer.pad_h < 0 || layer.pad_w < 0 || layer.dilation_h < 0 ||
        layer.dilation_w < 0 || layer.groups < 0)
        return nn__fail(NN_ERR_ARG, "nn_add: %s with %d outputs, kernel %dx%d, stride %dx%d, padding %dx%d, "
                        "dilation %dx%d, groups %d: sizes must be >= 0", nn_layer_name(layer.kind), layer.out,
                        layer.kernel_h, layer.kernel_w, layer.stride_h, layer.stride_w, layer.pad_h,
                        layer.pad_w, layer.dilation_h, layer.dilation_w, layer.groups);
    if ((unsigned)layer.no_bias > 1 || (unsigned)layer.approximate > 1 || (unsigned)layer.ceil_mode > 1 ||
        (unsigned)layer.exclude_pad > 1 || (unsigned)layer.no_affine > 1 || (unsigned)layer.relu > 1)
        return nn__fail(NN_ERR_ARG, "nn_add: %s with no_bias %d, approximate %d, ceil_mode %d, exclude_pad %d, "
                        "no_affine %d, relu %d: expected 0 or 1", nn_layer_name(layer.kind), layer.no_bias,
                        layer.approximate, layer.ceil_mode, layer.exclude_pad, layer.no_affine, layer.relu);
    if (!isfinite(layer.negative_slope) || !isfinite(layer.factor) || !isfinite(layer.p) ||
        !isfinite(layer.beta) || !isfinite(layer.threshold) || !isfinite(layer.min_val) ||
        !isfinite(layer.max_val) || !isfinite(layer.momentum) || !isfinite(layer.eps))
        return nn__fail(NN_ERR_ARG, "nn_add: %s with a number that is not finite (negative_slope %g, factor %g, "
                        "p %g, beta %g, threshold %g, min_val %g, max_val %g, momentum %g, eps %g)",
                        nn_layer_name(layer.kind), (double)layer.negative_slope, (double)layer.factor,
                        (double)layer.p, (double)layer.beta, (double)layer.threshold, (double)layer.min_val,
                        (double)layer.max_val, (double)layer.momentum, (double)layer.eps);
    if ((st = nn__name_check(layer.name)) != NN_OK) return st;
    if ((st = nn__options_fit(&layer)) != NN_OK) return st;
    if (layer.name) strcpy(name, layer.name);   /* checked: it fits */
    if (net->num_layers == net->layer_capacity) {
        int cap = net->layer_capacity ? 2 * net->layer_capacity : 16;
        nn_layer *grown = (nn_layer *)nn__calloc((size_t)cap, sizeof *grown);
        if (!grown) return nn__fail(NN_ERR_NOMEM, "nn_add: out of memory");
        if (net->num_layers) memcpy(grown, net->layers, (size_t)net->num_layers * sizeof *grown);
        for (i = 0; i < net->num_layers; i++)   /* each name points to its own layer's copy */
            if (grown[i].desc.name) grown[i].desc.name = grown[i].name;
        nn__free(net->layers);
        net->layers = grown;
        net->layer_capacity = cap;
    }
    L = &net->layers[net->num_layers++];
    memset(L, 0, sizeof *L);
    L->desc = layer;
    if (layer.name) {
        strcpy(L->name, name);
        L->desc.name = L->name;
    }
    return NN_OK;
}

NNDEF nn_status nn_set_input_grad(nn_net *net, int enable)
{
    nn__error_clear();
    if (!net) return nn__fail(NN_ERR_ARG, "nn_set_input_grad: net is NULL");
    enable = enable != 0;
    if (net->built && enable != net->want_input_grad)
        return nn__fail(NN_ERR_STATE, "nn_set_input_grad: the net is already built "
                        "(ask before nn_build, or build it again)");
    net->want_input_grad = enable;
    return NN_OK;
}

NNDEF const float *nn_input_grad(const nn_net *net)
{
    nn__error_clear();
    if (!net) { nn__fail(NN_ERR_ARG, "nn_input_grad: net is NULL"); return NULL; }
    if (!net->built || net->inference || !net->want_input_grad || !net->backward_done ||
        net->plan[0].dx == NN__T_NONE) {
        nn__fail(NN_ERR_STATE, "nn_input_grad: %s", !net->built ? "the net is not built"
                 : net->inference ? "the net is inference-only (nn_inference_only)"
                 : !net->want_input_grad ? "not asked for (nn_set_input_grad before nn_build)"
                 : "no nn_backward since the net was built");
        return NULL;
    }
    return net->tp.ptr[net->plan[0].dx];
}

/* Adds a buffer of count floats (per sample times batch) to a build's total, which
   saturates at SIZE_MAX; the kernels index one buffer with int arithmetic. */
static int nn__plan_add(size_t *total, size_t per_sample, size_t batch)
{
    size_t count;
    if (!nn__mul_ok(per_sample, batch, &count) || count > INT_MAX) return 0;
    *total = count > (SIZE_MAX - *total) / sizeof(float) ? SIZE_MAX : *total + count * sizeof(float);
    return 1;
}

/* The last layer's per-sample output shape, also while a build is planned (the
   public nn_output_shape answers only for a built net). */
static nn_shape nn__net_output(const nn_net *net)
{
    return net->num_layers ? net->layers[net->num_layers - 1].out : net->input;
}

/* A new tensor of count floats at the end of the arena. */
static int nn__tensor_new(nn__tplan *t, size_t count)
{
    size_t rounded = (count + 15) / 16 * 16;
    t->size[t->count] = count;
    t->at[t->count] = t->floats;
    t->floats = rounded > SIZE_MAX - t->floats ? SIZE_MAX : t->floats + rounded;
    return t->count++;
}

static float *nn__t(const nn_net *net, int id) { return id < 0 ? NULL : net->tp.ptr[id]; }

/* The gradient that layer j's backward leaves for the output of the layer before it:
   its dx, or for a mark that ends a path, the sum's g (its block end's dx). */
static int nn__grad_to(const nn__lplan *plan, const nn_net *net, int j)
{
    nn_layer_kind k = net->layers[j].desc.kind;
    if (k == NN_SHORTCUT) return plan[plan[plan[j].block].block].dx;
    return plan[j].dx;
}

/* Plans the tensors of a net whose shapes nn__net_plan has set: with gradients and a
   tensor per buffer (training), or by lifetimes without gradients (inference). */
static nn_status nn__plan_tensors(const nn_net *net, nn__lplan *plan, int inference, nn__tplan *t)
{
    size_t b = (size_t)net->max_batch, slot = 0, work = 0;
    int i, last = net->num_layers - 1, cur = NN__T_INPUT, up = net->want_input_grad, cap = 3 * net->num_layers + 4;
    int *last_use = NULL, *busy = NULL, slots = 0, shared_work = NN__T_NONE;
    memset(t, 0, sizeof *t);
    t->size = (size_t *)nn__calloc((size_t)cap, sizeof(size_t));
    t->at = (size_t *)nn__calloc((size_t)cap, sizeof(size_t));
    t->ptr = (float **)nn__calloc((size_t)cap, sizeof(float *));
    if (!t->size || !t->at || !t->ptr) goto nomem;
    t->count = 2;   /* NN__T_INPUT, NN__T_DOUT */
    t->loss_grad = NN__T_NONE;
    if (inference) {
        for (i = 0; i < net->num_layers; i++)
            if (plan[i].work_size > work) work = plan[i].work_size;
        if (work) shared_work = nn__tensor_new(t, work);
    }
    /* Forward: inputs, outputs, workspaces, and up at each input. */
    for (i = 0; i < net->num_layers; i++) {
        const nn_layer *L = &net->layers[i];
        nn__lplan *p = &plan[i];
        p->x = cur;
        p->x2 = p->dx = p->dy = p->dy2 = p->work = NN__T_NONE;
        p->up = up;
        switch (L->desc.kind) {
        case NN_BLOCK:
            p->y = cur;
            break;
        case NN_SHORTCUT:   /* the shortcut path starts again from the block's input */
            p->y = cur = plan[p->block].y;
            up = plan[p->block].up;
            break;
        case NN_BLOCK_END: {
            int s = plan[p->block].shortcut;
            p->x2 = s >= 0 ? plan[s].x : cur;
            p->x = s >= 0 ? cur : plan[p->block].y;
            p->up = up = up || (s >= 0 && plan[s].up);
            p->y = nn__tensor_new(t, nn_shape_size(L->out) * b);
            break;
        }
        default:
            if (nn__is_view(L)) p->y = cur;
            else if (!p->run) p->y = p->x = plan[i - 1].y;   /* a fused ReLU */
            else p->y = nn__tensor_new(t, nn_shape_size(L->out) * b);
            if (p->work_size) p->work = inference ? shared_work : nn__tensor_new(t, p->work_size);
            up |= L->weight != NULL || L->bias != NULL;
        }
        cur = p->y;
    }
    if (!inference) {
        /* Backward: the gradients, from the output down. */
        for (i = last; i >= 0; i--) {
            const nn_layer *L = &net->layers[i];
            nn__lplan *p = &plan[i];
            p->dy = i == last ? NN__T_DOUT : nn__grad_to(plan, net, i + 1);
            switch (L->desc.kind) {
            case NN_BLOCK_END:
                p->dx = !p->up ? NN__T_NONE : L->desc.relu ? nn__tensor_new(t, nn_shape_size(L->out) * b) : p->dy;
                break;
            case NN_BLOCK:
                p->dy2 = p->shortcut >= 0 ? nn__grad_to(plan, net, p->shortcut + 1) : plan[p->block].dx;
                p->dx = p->up ? nn__tensor_new(t, nn_shape_size(L->in) * b) : NN__T_NONE;
                break;
            case NN_SHORTCUT:
                break;
            default:
                if (!p->up) break;
                p->dx = nn__is_view(L) || !p->run ? p->dy : nn__tensor_new(t, nn_shape_size(L->in) * b);
            }
        }
        t->loss_grad = nn__tensor_new(t, nn_shape_size(nn__net_output(net)) * b);
        return NN_OK;
    }
    /* Inference: every output into the first slot that no live output holds. */
    last_use = (int *)nn__calloc((size_t)t->count, sizeof(int));
    busy = (int *)nn__calloc((size_t)t->count, sizeof(int));
    if (!last_use || !busy) goto nomem;
    for (i = 0; i < net->num_layers; i++) {
        const nn__lplan *p = &plan[i];
        if (p->x >= 2 && last_use[p->x] < i) last_use[p->x] = i;
        if (p->x2 >= 2 && last_use[p->x2] < i) last_use[p->x2] = i;
        if (t->size[p->y] > slot && p->y >= 2) slot = t->size[p->y];
    }
    if (plan[last].y >= 2) last_use[plan[last].y] = net->num_layers;
    slot = (slot + 15) / 16 * 16;
    t->floats = work ? t->at[shared_work] + (work + 15) / 16 * 16 : 0;
    for (i = 0; i < net->num_layers; i++) {
        int id = plan[i].y, k;
        if (!plan[i].run) continue;   /* a view, a mark or a fused ReLU writes no tensor */
        for (k = 0; k < slots && busy[k] >= i; k++) {}
        if (k == slots) slots++;
        busy[k] = last_use[id];
        t->at[id] = t->floats + (size_t)k * slot;   /* after the workspace */
    }
    if (slots && slot > (SIZE_MAX - t->floats) / (size_t)slots) t->floats = SIZE_MAX;
    else t->floats += (size_t)slots * slot;
    nn__free(last_use);
    nn__free(busy);
    return NN_OK;
nomem:
    nn__free(last_use);
    nn__free(busy);
    nn__tplan_free(t);
    return nn__fail(NN_ERR_NOMEM, "planning the buffers: out of memory");
}

/* Points the net's tensors at its planned arena. */
static void nn__arena_set(nn_net *net, float *arena)
{
    int id;
    for (id = 2; id < net->tp.count; id++) net->tp.ptr[id] = arena + net->tp.at[id];
    net->arena = arena;
    net->loss_grad = nn__t(net, net->tp.loss_grad);
}

static int nn__unique(char **keys, int n, size_t stride, const char **dup);

/* A block mark: the shapes of its paths. NN_SHORTCUT gives the shortcut path the
   block's input; NN_BLOCK_END checks that both paths end in one shape. */
static nn_status nn__mark_setup(nn_net *net, int i, int *stack, int *depth)
{
    nn_layer *L = &net->layers[i];
    nn__lplan *p = &net->plan[i];
    int b;
    L->out = L->in;
    if (L->desc.kind == NN_BLOCK) {
        p->shortcut = -1;
        stack[(*depth)++] = i;
        return NN_OK;
    }
    if (*depth == 0)
        return nn__fail(NN_ERR_ARG, "nn_build: layer %d (%s) is outside every block (no nn_block before it)",
                        i, nn_layer_name(L->desc.kind));
    b = stack[*depth - 1];
    p->block = b;
    if (L->desc.kind == NN_SHORTCUT) {
        if (net->plan[b].shortcut >= 0)
            return nn__fail(NN_ERR_ARG, "nn_build: layer %d is a second Shortcut of the block at layer %d "
                            "(the first is layer %d)", i, b, net->plan[b].shortcut);
        net->plan[b].shortcut = i;
        L->out = net->layers[b].in;
        return NN_OK;
    }
    {
        int s = net->plan[b].shortcut;
        nn_shape m = s >= 0 ? net->layers[s].in : L->in, c = s >= 0 ? L->in : net->layers[b].in;
        if (m.c != c.c || m.h != c.h || m.w != c.w)
            return nn__fail(NN_ERR_ARG, "nn_build: the block at layer %d (ended by layer %d): its main path "
                            "ends in %dx%dx%d, its shortcut in %dx%dx%d; both must have one shape",
                            b, i, m.c, m.h, m.w, c.c, c.h, c.w);
        net->plan[b].block = i;
        (*depth)--;
    }
    return NN_OK;
}

/* The first half of nn_build: infers every shape, declares the parameters (without
   their values), chooses the fusions, plans the tensors and sums the bytes that the
   buffers will take (the parameter table included). Allocates the tables, not the
   buffers. */
static nn_status nn__net_plan(nn_net *net, int max_batch, size_t *bytes)
{
    nn_shape shape = net->input;
    nn_status st;
    nn__tplan t;
    int i, depth = 0, *stack = NULL;
    size_t b = (size_t)max_batch, total = (size_t)net->num_layers * 4 * sizeof(nn_param), ignored = 0;
    nn__free(net->params);
    nn__free(net->plan);
    nn__net_release_arena(net);
    net->params = NULL;
    net->plan = NULL;
    net->num_params = 0;
    net->scratch_size = 0;
    net->max_batch = max_batch;
    /* At most four tensors per layer (weight, bias, running mean, running variance). */
    if (total > (size_t)NN_MAX_BUILD_BYTES)
        return nn__fail(NN_ERR_NOMEM, "nn_build: the parameter table of %d layers would take %zu bytes, "
                        "more than NN_MAX_BUILD_BYTES (%zu)", net->num_layers, total, (size_t)NN_MAX_BUILD_BYTES);
    net->params = (nn_param *)nn__calloc((size_t)net->num_layers * 4, sizeof(nn_param));
    net->plan = (nn__lplan *)nn__calloc((size_t)net->num_layers, sizeof(nn__lplan));
    stack = (int *)nn__calloc((size_t)net->num_layers, sizeof(int));
    if (!net->params || !net->plan || !stack) { st = nn__fail(NN_ERR_NOMEM, "nn_build: out of memory"); goto done; }
    if (nn_shape_size(shape) > INT_MAX) {
        st = nn__fail(NN_ERR_ARG, "nn_build: an input of %dx%dx%d holds more than INT_MAX values",
                      shape.c, shape.h, shape.w);
        goto done;
    }
    for (i = 0; i < net->num_layers; i++) {
        nn_layer *L = &net->layers[i];
        nn__lplan *p = &net->plan[i];
        const nn__layer_ops *ops = nn__ops(L->desc.kind);
        nn_layer_kind k = L->desc.kind;
        L->in = shape;
        L->weight = L->bias = L->running_mean = L->running_var = NULL;
        p->block = p->shortcut = -1;
        if (k == NN_BLOCK || k == NN_SHORTCUT || k == NN_BLOCK_END) {
            if ((st = nn__mark_setup(net, i, stack, &depth)) != NN_OK) goto done;
            p->run = k == NN_BLOCK_END;
            shape = L->out;
            continue;
        }
        if (!ops) {
            st = nn__fail(NN_ERR_ARG, "nn_build: layer %d (%s) is not available in this version",
                          i, nn_layer_name(L->desc.kind));
            goto done;
        }
        if ((st = ops->setup(net, L)) != NN_OK) {
            char why[sizeof nn__error_text];
            memcpy(why, nn__error_text, sizeof why);
            st = nn__fail(st, "nn_build: layer %d (%s) on input %dx%dx%d: %s", i,
                          nn_layer_name(L->desc.kind), shape.c, shape.h, shape.w, why);
            goto done;
        }
        if (nn_shape_size(L->out) == 0) {
            st = nn__fail(NN_ERR_ARG, "nn_build: layer %d (%s) maps input %dx%dx%d to an empty output",
                          i, nn_layer_name(L->desc.kind), shape.c, shape.h, shape.w);
            goto done;
        }
        p->run = !nn__is_view(L) && !(i > 0 && net->plan[i - 1].relu);
#ifndef NN_NO_FUSION
        /* A BatchNorm followed by a ReLU writes the ReLU's output and takes its gradient. */
        p->relu = k == NN_BATCHNORM && i + 1 < net->num_layers && net->layers[i + 1].desc.kind == NN_RELU;
#endif
        if (nn_shape_size(L->out) > INT_MAX || !nn__plan_add(&ignored, nn_shape_size(L->out), b) ||
            !nn__plan_add(&ignored, nn_shape_size(L->in), b) || !nn__plan_add(&total, p->work_size, 1)) {
            st = nn__fail(NN_ERR_ARG, "nn_build: layer %d (%s) on input %dx%dx%d: a buffer for %d "
                          "samples would hold more than INT_MAX values", i, nn_layer_name(L->desc.kind),
                          shape.c, shape.h, shape.w, max_batch);
            goto done;
        }
        shape = L->out;
    }
    if (depth) {
        st = nn__fail(NN_ERR_ARG, "nn_build: the block at layer %d is never ended (no nn_block_end)",
                      stack[depth - 1]);
        goto done;
    }
    if (net->num_params > 1) {   /* the names, sorted, must differ */
        char **names = (char **)nn__alloc((size_t)net->num_params * sizeof(char *));
        const char *dup = NULL;
        int unique;
        if (!names) { st = nn__fail(NN_ERR_NOMEM, "nn_build: out of memory"); goto done; }
        for (i = 0; i < net->num_params; i++) names[i] = net->params[i].name;
        unique = nn__unique(names, net->num_params, sizeof(char *), &dup);
        if (!unique) st = nn__fail(NN_ERR_ARG, "nn_build: two parameters are named %s (layer names must differ)", dup);
        nn__free(names);
        if (!unique) goto done;
    }
    for (i = 0; i < net->num_params; i++) {
        if (!nn__plan_add(&total, net->params[i].size, net->params[i].learnable ? 2 : 1)) {
            st = nn__fail(NN_ERR_ARG, "nn_build: parameter %s would hold more than INT_MAX values",
                          net->params[i].name);
            goto done;
        }
    }
    if (!nn__plan_add(&ignored, nn_shape_size(shape), b) || !nn__plan_add(&total, net->scratch_size, 1)) {
        st = nn__fail(NN_ERR_ARG, "nn_build: the loss gradient or the shared workspace would hold "
                      "more than INT_MAX values");
        goto done;
    }
    if ((st = nn__plan_tensors(net, net->plan, 0, &t)) != NN_OK) goto done;
    total = t.floats > (SIZE_MAX - total) / sizeof(float) ? SIZE_MAX : total + t.floats * sizeof(float);
    net->tp = t;   /* the arena is allocated by nn_build */
    *bytes = total;
    st = NN_OK;
done:
    nn__free(stack);
    return st;
}

NNDEF nn_status nn_build(nn_net *net, int max_batch, uint64_t seed)
{
    nn__error_clear();
    nn_status st;
    int i;
    size_t bytes;
    float *arena;
    if (!net) return nn__fail(NN_ERR_ARG, "nn_build: net is NULL");
    if (max_batch <= 0) return nn__fail(NN_ERR_ARG, "nn_build: batch size %d, expected > 0", max_batch);
    if (net->num_layers == 0) return nn__fail(NN_ERR_ARG, "nn_build: the net has no layers");
    if (net->q) return nn__fail(NN_ERR_STATE, "nn_build: the net is quantized (int8): it cannot be rebuilt");
    if (net->built) nn__net_release_buffers(net);
    net->builds++;   /* an optimiser of an earlier build notices */
    net->rng = nn_rng_new(seed);
    if ((st = nn__net_plan(net, max_batch, &bytes)) != NN_OK) goto fail;
    if (bytes > (size_t)NN_MAX_BUILD_BYTES) {
        st = nn__fail(NN_ERR_NOMEM, "nn_build: the buffers for batches of %d would take %zu bytes, more "
                      "than NN_MAX_BUILD_BYTES (%zu)", max_batch, bytes, (size_t)NN_MAX_BUILD_BYTES);
        goto fail;
    }
    if (!(arena = (float *)nn__calloc(net->tp.floats, sizeof(float)))) {
        st = nn__fail(NN_ERR_NOMEM, "nn_build: cannot allocate the %zu bytes of the activations and "
                      "gradients", net->tp.floats * sizeof(float));
        goto fail;
    }
    nn__arena_set(net, arena);
    for (i = 0; i < net->num_params; i++) {
        nn_param *p = &net->params[i];
        p->value = (float *)nn__calloc(p->size, sizeof(float));
        if (p->learnable) p->grad = (float *)nn__calloc(p->size, sizeof(float));
        if (!p->value || (p->learnable && !p->grad)) {
            st = nn__fail(NN_ERR_NOMEM, "nn_build: cannot allocate parameter %s", p->name);
            goto fail;
        }
    }
    if (net->scratch_size && !(net->scratch = (float *)nn__calloc(net->scratch_size, sizeof(float)))) {
        st = nn__fail(NN_ERR_NOMEM, "nn_build: cannot allocate the shared workspace");
        goto fail;
    }
    {
        /* Default initialisation, layer by layer in order, from the seed. */
        nn_rng init_rng = nn_rng_new(seed ^ 0x9e3779b97f4a7c15ULL);
        for (i = 0; i < net->num_layers; i++) {
            const nn__layer_ops *ops = nn__ops(net->layers[i].desc.kind);
            if (ops && ops->init) ops->init(&net->layers[i], &init_rng);
        }
    }
    net->built = 1;
    net->training = 1;
    return NN_OK;
fail:
    nn__net_release_buffers(net);
    return st;
}

NNDEF nn_status nn_init_weights(nn_net *net, nn_init how, float mean_or_value, float std,
                                float bias_value, nn_layer_kind only)
{
    nn__error_clear();
    nn_rng rng;
    int i;
    size_t j;
    if (!net) return nn__fail(NN_ERR_ARG, "nn_init_weights: net is NULL");
    if (!net->built) return nn__fail(NN_ERR_STATE, "nn_init_weights: the net is not built");
    if (how != NN_INIT_DEFAULT && how != NN_INIT_NORMAL && how != NN_INIT_CONSTANT)
        return nn__fail(NN_ERR_ARG, "nn_init_weights: unknown initialisation %d", (int)how);
    if ((int)only < 0 || (int)only >= NN_LAYER_KIND_COUNT)
        return nn__fail(NN_ERR_ARG, "nn_init_weights: unknown layer kind %d", (int)only);
    if (how != NN_INIT_DEFAULT && (!isfinite(mean_or_value) || !isfinite(bias_value) ||
                                   (how == NN_INIT_NORMAL && !(std >= 0.0f && isfinite(std)))))
        return nn__fail(NN_ERR_ARG, "nn_init_weights: %s %g, std %g, bias %g: expected finite "
                        "values and std >= 0", how == NN_INIT_NORMAL ? "mean" : "value",
                        mean_or_value, std, bias_value);
    rng = nn_rng_new(net->rng.state ^ 0x2545f4914f6cdd1dULL);
    for (i = 0; i < net->num_layers; i++) {
        nn_layer *L = &net->layers[i];
        int match = only ? L->desc.kind == only
                         : (L->desc.kind == NN_LINEAR || L->desc.kind == NN_CONV2D);
        if (!match || !L->weight) continue;
        if (how == NN_INIT_DEFAULT) {
            nn__ops(L->desc.kind)->init(L, &rng);
            continue;
        }
        for (j = 0; j < L->weight->size; j++)
            L->weight->value[j] = how == NN_INIT_NORMAL ? nn_rng_normal(&rng, mean_or_value, std)
                                                        : mean_or_value;
        if (L->bias)
            for (j = 0; j < L->bias->size; j++) L->bias->value[j] = bias_value;
    }
    return NN_OK;
}

NNDEF nn_status nn_inference_only(nn_net *net)
{
    nn__error_clear();
    nn__lplan *plan;
    nn__tplan t;
    float *arena;
    if (!net) return nn__fail(NN_ERR_ARG, "nn_inference_only: net is NULL");
    if (!net->built) return nn__fail(NN_ERR_STATE, "nn_inference_only: the net is not built");
    if (net->inference) return NN_OK;
    if (!(plan = (nn__lplan *)nn__alloc((size_t)net->num_layers * sizeof *plan)))
        return nn__fail(NN_ERR_NOMEM, "nn_inference_only: out of memory (the net is unchanged)");
    memcpy(plan, net->plan, (size_t)net->num_layers * sizeof *plan);
    if (nn__plan_tensors(net, plan, 1, &t) != NN_OK || t.floats == SIZE_MAX ||
        !(arena = (float *)nn__calloc(t.floats, sizeof(float)))) {
        nn__free(plan);
        nn__tplan_free(&t);
        return nn__fail(NN_ERR_NOMEM, "nn_inference_only: out of memory (the net is unchanged)");
    }
    nn__net_release_arena(net);
    nn__net_release_grads(net);
    nn__free(net->plan);
    net->plan = plan;
    net->tp = t;
    nn__arena_set(net, arena);
    net->inference = 1;
    net->batch = 0;
    net->backward_done = 0;
    return NN_OK;
}

NNDEF nn_status nn_set_training(nn_net *net, int training)
{
    nn__error_clear();
    if (!net) return nn__fail(NN_ERR_ARG, "nn_set_training: net is NULL");
    if (!net->built) return nn__fail(NN_ERR_STATE, "nn_set_training: the net is not built");
    net->training = training != 0;
    return NN_OK;
}

/* The getters' answer for a NULL net: 0 with the error set. */
static int nn__null_net(const char *fn)
{
    nn__fail(NN_ERR_ARG, "%s: net is NULL", fn);
    return 0;
}

NNDEF int nn_num_layers(const nn_net *net)
{
    nn__error_clear();
    return net ? net->num_layers : nn__null_net("nn_num_layers");
}
NNDEF const nn_layer *nn_get_layer(const nn_net *net, int i)
{
    nn__error_clear();
    if (!net) { nn__null_net("nn_get_layer"); return NULL; }
    if (i < 0 || i >= net->num_layers) {
        nn__fail(NN_ERR_ARG, "nn_get_layer: layer %d of %d", i, net->num_layers);
        return NULL;
    }
    return &net->layers[i];
}
NNDEF int nn_num_param_tensors(const nn_net *net)
{
    nn__error_clear();
    return net ? net->num_params : nn__null_net("nn_num_param_tensors");
}
NNDEF nn_param *nn_get_param(nn_net *net, int i)
{
    nn__error_clear();
    if (!net) { nn__null_net("nn_get_param"); return NULL; }
    if (i < 0 || i >= net->num_params) {
        nn__fail(NN_ERR_ARG, "nn_get_param: parameter %d of %d", i, net->num_params);
        return NULL;
    }
    return &net->params[i];
}
static int nn__nonneg(float v);

NNDEF nn_status nn_set_param_options(nn_net *net, const char *name, nn_param_options o)
{
    nn__error_clear();
    size_t len;
    int i, matched = 0;
    if (!net || !name) return nn__fail(NN_ERR_ARG, "nn_set_param_options: %s is NULL", net ? "name" : "net");
    if (!net->built) return nn__fail(NN_ERR_STATE, "nn_set_param_options: build the net first");
    if (!nn__nonneg(o.lr_scale) || !nn__nonneg(o.wd_scale) || (o.no_decay != 0 && o.no_decay != 1) ||
        (o.frozen != 0 && o.frozen != 1))
        return nn__fail(NN_ERR_ARG, "nn_set_param_options: lr_scale %g, wd_scale %g, no_decay %d, frozen %d: "
                        "expected finite scales >= 0 and flags 0 or 1", o.lr_scale, o.wd_scale, o.no_decay, o.frozen);
    len = strlen(name);
    for (i = 0; i < net->num_params; i++) {
        nn_param *p = &net->params[i];
        if (!p->learnable || strncmp(p->name, name, len) || (len && p->name[len] && p->name[len] != '.')) continue;
        p->options = o;
        matched++;
    }
    if (!matched)
        return nn__fail(NN_ERR_ARG, "nn_set_param_options: no learnable parameter is named '%s' or begins '%s.'",
                        name, name);
    return NN_OK;
}

NNDEF size_t nn_num_param_scalars(const nn_net *net)
{
    nn__error_clear();
    size_t total = 0;
    int i;
    if (!net) return (size_t)nn__null_net("nn_num_param_scalars");
    for (i = 0; i < net->num_params; i++)
        if (net->params[i].learnable) total += net->params[i].size;
    return total;
}
NNDEF nn_shape nn_input_shape(const nn_net *net)
{
    nn__error_clear();
    if (!net) {
        nn__null_net("nn_input_shape");
        return nn_shape3(0, 0, 0);
    }
    return net->input;
}
NNDEF nn_shape nn_output_shape(const nn_net *net)
{
    nn__error_clear();
    if (!net || !net->built) {
        if (!net) nn__null_net("nn_output_shape");
        return nn_shape3(0, 0, 0);
    }
    return net->layers[net->num_layers - 1].out;
}
NNDEF int nn_max_batch(const nn_net *net)
{
    nn__error_clear();
    if (!net) return nn__null_net("nn_max_batch");
    return net->built ? net->max_batch : 0;
}

/* The context of layer i's forward or backward. */
static nn__run nn__run_of(nn_net *net, int i)
{
    nn__run r;
    r.p = &net->plan[i];
    r.work = nn__t(net, r.p->work);
    r.scratch = net->scratch;
    r.max_batch = net->max_batch;
    r.training = net->training;
    r.inference = net->inference;
    r.rng = &net->rng;
    r.sync = net->sync_bn && net->allreduce && net->training ? net : NULL;
    return r;
}

/* Layer i of nn_forward on net->batch samples (a view, a mark or a fused ReLU runs
   nothing); NN_BLOCK_END adds its two paths. */
static void nn__forward_layer(nn_net *net, int i)
{
    nn_layer *L = &net->layers[i];
    const nn__lplan *p = &net->plan[i];
    nn__run r;
    if (!p->run) return;
    if (L->desc.kind == NN_BLOCK_END) {
        size_t count = (size_t)net->batch * nn_shape_size(L->out);
        float *y = nn__t(net, p->y);
        nn__vadd(y, nn__t(net, p->x2), nn__t(net, p->x), count);
        if (L->desc.relu) nn__vmask_pos(y, y, y, count);
        return;
    }
    r = nn__run_of(net, i);
    nn__ops(L->desc.kind)->forward(&r, L, nn__t(net, p->x), nn__t(net, p->y), net->batch);
}

/* Layer i of nn_backward: nothing for a layer without parameters whose input
   gradient is not needed. NN_BLOCK_END: g = dy [y > 0] after a ReLU (else g is dy);
   NN_BLOCK: the sum of the gradients of its two paths. no_dx: the input gradient is
   not wanted (nothing below the layer is trained). */
static void nn__backward_layer(nn_net *net, int i, int no_dx)
{
    nn_layer *L = &net->layers[i];
    const nn__lplan *p = &net->plan[i];
    nn__run r;
    if (p->dx == NN__T_NONE && !L->weight && !L->bias) return;
    if (L->desc.kind == NN_BLOCK_END) {
        if (L->desc.relu)
            nn__vmask_pos(nn__t(net, p->dx), nn__t(net, p->y), nn__t(net, p->dy),
                          (size_t)net->batch * nn_shape_size(L->out));
        return;
    }
    if (L->desc.kind == NN_BLOCK) {
        nn__vadd(nn__t(net, p->dx), nn__t(net, p->dy), nn__t(net, p->dy2),
                 (size_t)net->batch * nn_shape_size(L->in));
        return;
    }
    if (!p->run) return;
    r = nn__run_of(net, i);
    nn__ops(L->desc.kind)->backward(&r, L, nn__t(net, p->x), nn__t(net, p->y), nn__t(net, p->dy),
                                    no_dx ? NULL : nn__t(net, p->dx), net->batch);
}

/* The lowest layer with a learnable parameter that is not frozen (num_layers if
   none): gradients flow from higher indices to lower ones only, so nothing below it
   needs its input gradient. */
static int nn__lowest_trained(const nn_net *net)
{
    int i;
    for (i = 0; i < net->num_layers; i++) {
        const nn_layer *L = &net->layers[i];
        if ((L->weight && L->weight->learnable && !L->weight->options.frozen) ||
            (L->bias && L->bias->learnable && !L->bias->options.frozen))
            return i;
    }
    return i;
}

NNDEF const float *nn_forward(nn_net *net, const float *x, int n)
{
    nn__error_clear();
    int i;
    if (!net) { nn__fail(NN_ERR_ARG, "nn_forward: net is NULL"); return NULL; }
    if (!net->built) { nn__fail(NN_ERR_STATE, "nn_forward: the net is not built"); return NULL; }
    if (!x) { nn__fail(NN_ERR_ARG, "nn_forward: x is NULL"); return NULL; }
    if (n <= 0 || n > net->max_batch) {
        nn__fail(NN_ERR_ARG, "nn_forward: %d samples, the net was built for 1 to %d", n, net->max_batch);
        return NULL;
    }
    if (net->q) return nn__qforward(net, x, n);
    net->x = x;
    net->tp.ptr[NN__T_INPUT] = (float *)x;
    net->batch = n;
    net->train_batches += net->training;
    net->sync_failed = 0;
    for (i = 0; i < net->num_layers; i++) nn__forward_layer(net, i);
    if (net->sync_failed) {   /* a synchronised BatchNorm's hook failed: its message stands */
        nn__error_again();
        return NULL;
    }
    return nn__t(net, net->plan[net->num_layers - 1].y);
}

NNDEF nn_status nn_backward(nn_net *net, const float *dy)
{
    nn__error_clear();
    int i, lowest;
    if (!net) return nn__fail(NN_ERR_ARG, "nn_backward: net is NULL");
    if (!net->built) return nn__fail(NN_ERR_STATE, "nn_backward: the net is not built");
    if (!dy) return nn__fail(NN_ERR_ARG, "nn_backward: dy is NULL");
    if (net->inference)
        return nn__fail(NN_ERR_STATE, "nn_backward: the net is inference-only (nn_inference_only)");
    if (net->batch <= 0)
        return nn__fail(NN_ERR_STATE, "nn_backward: no nn_forward since the net was built");
    net->tp.ptr[NN__T_DOUT] = (float *)dy;
    net->sync_failed = 0;
    lowest = net->want_input_grad ? 0 : nn__lowest_trained(net);
    for (i = net->num_layers - 1; i >= lowest; i--)
        nn__backward_layer(net, i, i == lowest && !net->want_input_grad);
    net->backward_done = 1;
    if (net->sync_failed) {   /* the hook's message stands */
        nn__error_again();
        return NN_ERR_IO;
    }
    return NN_OK;
}

/* The layer accessors' checks; NULL when layer i of net may be read. */
static const char *nn__layer_unread(const nn_net *net, int i, const char *fn)
{
    if (!net) { nn__fail(NN_ERR_ARG, "%s: net is NULL", fn); return ""; }
    if (i < 0 || i >= net->num_layers) {
        nn__fail(NN_ERR_ARG, "%s: layer %d of %d", fn, i, net->num_layers);
        return "";
    }
    return !net->built ? "the net is not built" : NULL;
}

NNDEF const float *nn_layer_output(const nn_net *net, int i)
{
    nn__error_clear();
    const char *why = nn__layer_unread(net, i, "nn_layer_output");
    if (!why && net->batch <= 0) why = "no nn_forward since the net was built";
    if (!why && net->q) why = "the net is quantized (int8): it keeps no float layer outputs";
    if (!why && net->inference && i != net->num_layers - 1)
        why = "the net is inference-only: it keeps only the last layer's output";
    if (why) {
        if (*why) nn__fail(NN_ERR_STATE, "nn_layer_output: layer %d: %s", i, why);
        return NULL;
    }
    return nn__t(net, net->plan[i].y);
}

NNDEF const float *nn_layer_input_grad(const nn_net *net, int i)
{
    nn__error_clear();
    const char *why = nn__layer_unread(net, i, "nn_layer_input_grad");
    if (!why && net->inference) why = "the net is inference-only (nn_inference_only)";
    if (!why && !net->backward_done) why = "no nn_backward since the net was built";
    if (!why && net->layers[i].desc.kind == NN_SHORTCUT) why = "a Shortcut mark has no input gradient";
    if (!why && !net->plan[i].run && net->layers[i].desc.kind == NN_RELU)
        why = "the ReLU is fused into the BatchNorm before it, which applies its gradient";
    if (!why && net->plan[i].dx == NN__T_NONE)
        why = "not computed: no layer before it has parameters (nn_set_input_grad asks for it)";
    if (why) {
        if (*why) nn__fail(NN_ERR_STATE, "nn_layer_input_grad: layer %d: %s", i, why);
        return NULL;
    }
    return nn__t(net, net->plan[i].dx);
}

NNDEF nn_status nn_zero_grad(nn_net *net)
{
    nn__error_clear();
    int i;
    if (!net) return nn__fail(NN_ERR_ARG, "nn_zero_grad: net is NULL");
    if (!net->built || net->inference)
        return nn__fail(NN_ERR_STATE, "nn_zero_grad: %s", net->built ? "the net is inference-only"
                        : "the net is not built");
    for (i = 0; i < net->num_params; i++)
        if (net->params[i].grad) memset(net->params[i].grad, 0, net->params[i].size * sizeof(float));
    return NN_OK;
}

/* ---- Optimisers ------------------------------------------------------------------
   PyTorch's update rules, per parameter tensor, with g the gradient:
   SGD:    g += wd p;  b = g (first step) or momentum b + (1 - dampening) g;
           g = nesterov ? g + momentum b : b;  p -= lr g
   Adam:   g += wd p;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
           p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)
   AdamW:  p *= 1 - lr wd, then Adam without the g += wd p
   Adamax: g += wd p;  m = b1 m + (1-b1) g;  u = max(b2 u, |g| + eps);
           p -= lr/(1-b1^t) * m / u
   Per parameter (nn_param_options): lr x lr_scale, wd x wd_scale (0 with no_decay),
   and t, "first step", counted per parameter as PyTorch's per-parameter state, so a
   frozen parameter neither moves nor ages. */

typedef enum { NN__SGD, NN__ADAM, NN__ADAMW, NN__ADAMAX } nn__optim_kind;

struct nn_optim {
    nn__optim_kind kind;
    nn_net *net;
    long  builds;         /* net->builds when made: a later nn_build leaves it stale */
    int   num_params;     /* net->num_params when made (what m and v hold) */
    nn_sgd_desc sgd;
    nn_adam_desc adam;
    float lr;
    long  step;
    long *steps;          /* per parameter: updates it took part in (not while frozen) */
    float **m, **v;       /* per parameter: momentum / first moment, second moment */
    unsigned char *bad;   /* per chunk of the largest tensor: its trial update was not finite */
    float *saved;         /* nn_train_step: the buffers (running statistics) before the step */
};

#define NN__OPTIM_CHUNK 32768

static nn_optim *nn__optim_new(nn_net *net, nn__optim_kind kind, float lr, int moments)
{
    nn_optim *opt;
    size_t most = 1, buffers = 1;
    int i, k;
    if (!net) { nn__fail(NN_ERR_ARG, "optimiser: net is NULL"); return NULL; }
    if (!net->built) { nn__fail(NN_ERR_STATE, "optimiser: build the net first"); return NULL; }
    if (net->inference) { nn__fail(NN_ERR_STATE, "optimiser: the net is inference-only"); return NULL; }
    if (!(lr > 0.0f) || !isfinite(lr)) { nn__fail(NN_ERR_ARG, "optimiser: learning rate %g, expected > 0", lr); return NULL; }
    opt = (nn_optim *)nn__calloc(1, sizeof *opt);
    if (!opt) goto nomem;
    opt->kind = kind;
    opt->net = net;
    opt->builds = net->builds;
    opt->num_params = net->num_params;
    opt->lr = lr;
    opt->m = (float **)nn__calloc((size_t)net->num_params, sizeof(float *));
    opt->v = (float **)nn__calloc((size_t)net->num_params, sizeof(float *));
    opt->steps = (long *)nn__calloc((size_t)net->num_params, sizeof(long));
    if (!opt->m || !opt->v || !opt->steps) goto nomem;
    for (i = 0; i < net->num_params; i++) {
        nn_param *p = &net->params[i];
        if (!p->learnable) { buffers += p->size; continue; }
        if (p->size > most) most = p->size;
        for (k = 0; k < moments; k++) {
            float **slot = k == 0 ? &opt->m[i] : &opt->v[i];
            if (!(*slot = (float *)nn__calloc(p->size, sizeof(float)))) goto nomem;
        }
    }
    if (!(opt->bad = (unsigned char *)nn__calloc((most + NN__OPTIM_CHUNK - 1) / NN__OPTIM_CHUNK, 1)) ||
        !(opt->saved = (float *)nn__calloc(buffers, sizeof(float))))
        goto nomem;
    return opt;
nomem:
    nn_optim_free(opt);
    nn__fail(NN_ERR_NOMEM, "optimiser: out of memory");
    return NULL;
}

/* A hyperparameter that must be a finite number >= 0 (NaN fails every comparison). */
static int nn__nonneg(float v) { return v >= 0.0f && isfinite(v); }

NNDEF nn_optim *nn_sgd(nn_net *net, nn_sgd_desc desc)
{
    nn__error_clear();
    nn_optim *opt;
    if (!nn__nonneg(desc.momentum) || !isfinite(desc.dampening) || !nn__nonneg(desc.weight_decay) ||
        (desc.nesterov && (desc.momentum <= 0.0f || desc.dampening != 0.0f))) {
        nn__fail(NN_ERR_ARG, "SGD: momentum %g, dampening %g, weight decay %g: expected finite values, "
                 "momentum and weight decay >= 0 (Nesterov needs momentum > 0 and dampening 0)",
                 desc.momentum, desc.dampening, desc.weight_decay);
        return NULL;
    }
    opt = nn__optim_new(net, NN__SGD, desc.lr, desc.momentum != 0.0f);
    if (opt) opt->sgd = desc;
    return opt;
}

static nn_optim *nn__adam_family(nn_net *net, nn_adam_desc d, nn__optim_kind kind)
{
    nn_optim *opt;
    if (d.lr == 0.0f) d.lr = kind == NN__ADAMAX ? 2e-3f : 1e-3f;
    if (d.beta1 == 0.0f) d.beta1 = 0.9f;
    if (d.beta2 == 0.0f) d.beta2 = 0.999f;
    if (d.eps == 0.0f) d.eps = 1e-8f;
    if (d.weight_decay == 0.0f && kind == NN__ADAMW) d.weight_decay = 1e-2f;
    if (!(d.beta1 >= 0.0f && d.beta1 < 1.0f) || !(d.beta2 >= 0.0f && d.beta2 < 1.0f) ||
        !nn__nonneg(d.eps) || !nn__nonneg(d.weight_decay)) {
        nn__fail(NN_ERR_ARG, "Adam: betas (%g, %g) must lie in [0, 1), eps %g and weight decay %g "
                 "must be finite and >= 0", d.beta1, d.beta2, d.eps, d.weight_decay);
        return NULL;
    }
    opt = nn__optim_new(net, kind, d.lr, 2);
    if (opt) opt->adam = d;
    return opt;
}

NNDEF nn_optim *nn_adam(nn_net *net, nn_adam_desc desc) { nn__error_clear(); return nn__adam_family(net, desc, NN__ADAM); }
NNDEF nn_optim *nn_adamw(nn_net *net, nn_adam_desc desc) { nn__error_clear(); return nn__adam_family(net, desc, NN__ADAMW); }
NNDEF nn_optim *nn_adamax(nn_net *net, nn_adam_desc desc) { nn__error_clear(); return nn__adam_family(net, desc, NN__ADAMAX); }

NNDEF void nn_optim_free(nn_optim *opt)
{
    int i;
    if (!opt) return;
    for (i = 0; opt->m && i < opt->num_params; i++) {   /* the net may be gone or rebuilt */
        nn__free(opt->m[i]);
        if (opt->v) nn__free(opt->v[i]);
    }
    nn__free(opt->m);
    nn__free(opt->v);
    nn__free(opt->steps);
    nn__free(opt->bad);
    nn__free(opt->saved);
    nn__free(opt);
}

NNDEF nn_status nn_optim_set_lr(nn_optim *opt, float lr)
{
    nn__error_clear();
    if (!opt) return nn__fail(NN_ERR_ARG, "nn_optim_set_lr: opt is NULL");
    if (!nn__nonneg(lr)) return nn__fail(NN_ERR_ARG, "nn_optim_set_lr: learning rate %g, expected a finite value >= 0", lr);
    opt->lr = lr;
    return NN_OK;
}
NNDEF float nn_optim_get_lr(const nn_optim *opt)
{
    nn__error_clear();
    if (!opt) { nn__fail(NN_ERR_ARG, "nn_optim_get_lr: opt is NULL"); return NAN; }
    return opt->lr;
}
NNDEF long nn_optim_steps(const nn_optim *opt)
{
    nn__error_clear();
    if (!opt) { nn__fail(NN_ERR_ARG, "nn_optim_steps: opt is NULL"); return 0; }
    return opt->step;
}

/* ---- Learning-rate schedules ------------------------------------------------------
   Computed in double from the step alone (no state), so a resumed run gets the same
   rates, and rounded to float once. */

NNDEF float nn_lr_step_decay(float base_lr, long step, long step_size, float gamma)
{
    if (step_size <= 0) return base_lr;
    if (step < 0) step = 0;
    return (float)((double)base_lr * pow((double)gamma, (double)(step / step_size)));
}

NNDEF float nn_lr_cosine(float base_lr, long step, long total_steps, float min_lr)
{
    const double pi = 3.14159265358979323846;
    double t;
    if (total_steps <= 0) return base_lr;
    if (step < 0) step = 0;
    if (step >= total_steps) return min_lr;
    t = (double)step / (double)total_steps;   /* in [0, 1): the cosine falls from 1 to -1 */
    return (float)(min_lr + ((double)base_lr - min_lr) * (1.0 + cos(pi * t)) / 2.0);
}

NNDEF float nn_lr_triangular(float base_lr, long step, long total_steps, float warmup_frac,
                             float start_factor, float end_factor)
{
    long warm;
    double f;
    if (total_steps <= 0 || !(warmup_frac >= 0.0f && warmup_frac <= 1.0f)) return base_lr;
    if (step < 0) step = 0;
    if (step >= total_steps) return (float)((double)base_lr * end_factor);
    warm = (long)((double)total_steps * warmup_frac);   /* floor, as Python's int() */
    if (step < warm) {
        f = (double)step / (double)warm;
        return (float)((double)base_lr * (start_factor * (1.0 - f) + f));
    }
    f = (double)(step - warm) / (double)(total_steps - warm);
    return (float)((double)base_lr * ((1.0 - f) + end_factor * f));
}

/* The update rules on one vector of parameters, lanes [0, left); each lane is the
   scalar rule above with the same operations in the same order. With store 0 nothing
   is written (a trial run); the result has a NaN lane where the new parameter (or
   second moment) would not be finite: 0 x is NaN exactly for a NaN or infinite x. */
#if defined(__GNUC__) || defined(__clang__)
#define NN__ALWAYS_INLINE static inline __attribute__((always_inline))
#else
#define NN__ALWAYS_INLINE static
#endif

typedef struct {
    nn__v4 lr, wd, momentum, keep;   /* keep = 1 - dampening */
    int first_step, nesterov;
} nn__sgd_consts;

NN__ALWAYS_INLINE nn__v4 nn__sgd_lanes(nn__sgd_consts k, float *p, const float *grad, float *buf, int left, int store)
{
    nn__v4 w = nn__v4_load_n(p, left), b;
    nn__v4 g = nn__v4_add(nn__v4_load_n(grad, left), nn__v4_mul(k.wd, w));
    if (buf) {
        b = k.first_step ? g : nn__v4_add(nn__v4_mul(k.momentum, nn__v4_load_n(buf, left)),
                                          nn__v4_mul(k.keep, g));
        if (store) nn__v4_store_n(buf, b, left);
        g = k.nesterov ? nn__v4_add(g, nn__v4_mul(k.momentum, b)) : b;
    }
    /* a non-finite b (lr > 0, momentum > 0) makes w non-finite too */
    w = nn__v4_sub(w, nn__v4_mul(k.lr, g));
    if (!store) return nn__v4_mul(nn__v4_set1(0.0f), w);
    nn__v4_store_n(p, w, left);
    return nn__v4_set1(0.0f);
}

typedef struct {
    nn__v4 step_size, bc2, l2, decay, eps, b1, b2, one_minus_b1, one_minus_b2;
    int adamax;
} nn__adam_consts;

NN__ALWAYS_INLINE nn__v4 nn__adam_lanes(nn__adam_consts k, float *p, const float *grad, float *m, float *v, int left,
                             int store)
{
    nn__v4 w = nn__v4_load_n(p, left), a, zero = nn__v4_set1(0.0f);
    nn__v4 g = nn__v4_add(nn__v4_load_n(grad, left), nn__v4_mul(k.l2, w));
    nn__v4 mv = nn__v4_add(nn__v4_mul(k.b1, nn__v4_load_n(m, left)), nn__v4_mul(k.one_minus_b1, g));
    nn__v4 vv = nn__v4_load_n(v, left);
    if (k.adamax) {   /* u = max(b2 u, |g| + eps) */
        a = nn__v4_add(nn__v4_abs(g), k.eps);
        vv = nn__v4_mul(k.b2, vv);
        vv = nn__v4_select_gt(vv, a, vv, a);
        w = nn__v4_sub(w, nn__v4_div(nn__v4_mul(k.step_size, mv), vv));
    } else {
        w = nn__v4_mul(w, k.decay);
        vv = nn__v4_add(nn__v4_mul(k.b2, vv), nn__v4_mul(nn__v4_mul(k.one_minus_b2, g), g));
        w = nn__v4_sub(w, nn__v4_div(nn__v4_mul(k.step_size, mv),
                                     nn__v4_add(nn__v4_div(nn__v4_sqrt(vv), k.bc2), k.eps)));
    }
    /* a non-finite m makes w non-finite; an overflowing v would only freeze w */
    if (!store) return nn__v4_or(nn__v4_mul(zero, w), nn__v4_mul(zero, vv));
    nn__v4_store_n(m, mv, left);
    nn__v4_store_n(v, vv, left);
    nn__v4_store_n(p, w, left);
    return zero;
}

/* Two vectors per iteration: measured 1.4-2x faster than one per iteration on this
   machine (the E1 SGD update 0.20 -> 0.12 ms, VGG's Adam 15.5 -> 11-14 ms per step;
   docs/PERFORMANCE.md), four no faster than two. The constants go by value: in a
   struct behind a pointer they were reloaded after every store (a float store may
   alias a vector). Each returns 1 when some new value is not finite: the lanes'
   0 x are or-ed (an add would chain its latency through the loop), which keeps a NaN
   a NaN and +-0 a zero. They are inlined into the two calls of nn__optim_run, whose
   constant store gives each its own loop (a run-time store test slowed the update by
   half). */
NN__ALWAYS_INLINE int nn__sgd_update(const nn_optim *o, float lr, float wd, long t, float *p, const float *grad,
                                     float *buf, size_t n, int store)
{
    const nn_sgd_desc *d = &o->sgd;
    nn__sgd_consts k;
    nn__v4 bad = nn__v4_set1(0.0f);
    size_t i;
    k.lr = nn__v4_set1(lr);
    k.wd = nn__v4_set1(d->weight_decay * wd);
    k.momentum = nn__v4_set1(d->momentum);
    k.keep = nn__v4_set1(1.0f - d->dampening);
    k.first_step = t == 1;
    k.nesterov = d->nesterov;
    for (i = 0; i + 8 <= n; i += 8) {
        bad = nn__v4_or(bad, nn__sgd_lanes(k, p + i, grad + i, buf ? buf + i : NULL, 4, store));
        bad = nn__v4_or(bad, nn__sgd_lanes(k, p + i + 4, grad + i + 4, buf ? buf + i + 4 : NULL, 4, store));
    }
    for (; i < n; i += 4)
        bad = nn__v4_or(bad, nn__sgd_lanes(k, p + i, grad + i, buf ? buf + i : NULL, NN__V4_LEFT(n, i), store));
    return nn__v4_hsum(bad) != 0.0f;
}

NN__ALWAYS_INLINE int nn__adam_update(const nn_optim *o, float lr, float wd, long t, float *p, const float *grad,
                                      float *m, float *v, size_t n, int store)
{
    const nn_adam_desc *d = &o->adam;
    nn__adam_consts k;
    nn__v4 bad = nn__v4_set1(0.0f);
    size_t i;
    k.step_size = nn__v4_set1(lr / (1.0f - (float)pow(d->beta1, (double)t)));
    k.bc2 = nn__v4_set1((float)sqrt(1.0 - pow(d->beta2, (double)t)));
    k.l2 = nn__v4_set1(o->kind == NN__ADAMW ? 0.0f : d->weight_decay * wd);
    k.decay = nn__v4_set1(o->kind == NN__ADAMW ? 1.0f - lr * (d->weight_decay * wd) : 1.0f);
    k.eps = nn__v4_set1(d->eps);
    k.b1 = nn__v4_set1(d->beta1);
    k.b2 = nn__v4_set1(d->beta2);
    k.one_minus_b1 = nn__v4_set1(1.0f - d->beta1);
    k.one_minus_b2 = nn__v4_set1(1.0f - d->beta2);
    k.adamax = o->kind == NN__ADAMAX;
    for (i = 0; i + 8 <= n; i += 8) {
        bad = nn__v4_or(bad, nn__adam_lanes(k, p + i, grad + i, m + i, v + i, 4, store));
        bad = nn__v4_or(bad, nn__adam_lanes(k, p + i + 4, grad + i + 4, m + i + 4, v + i + 4, 4, store));
    }
    for (; i < n; i += 4)
        bad = nn__v4_or(bad, nn__adam_lanes(k, p + i, grad + i, m + i, v + i, NN__V4_LEFT(n, i), store));
    return nn__v4_hsum(bad) != 0.0f;
}

/* The update is element by element, so large tensors are cut into chunks that the
   threads share; the result does not depend on who does which chunk. */
typedef struct { nn_optim *opt; int param, store; } nn__optim_task;

static int nn__optim_run(const nn_optim *o, int param, size_t start, size_t count, int store)
{
    nn_param *p = &o->net->params[param];
    float *w = p->value + start, *m = o->m[param] ? o->m[param] + start : NULL;
    float *v = o->v[param] ? o->v[param] + start : NULL;
    const float *g = p->grad + start;
    float lr = p->options.lr_scale ? o->lr * p->options.lr_scale : o->lr;
    float wd = p->options.no_decay ? 0.0f : p->options.wd_scale ? p->options.wd_scale : 1.0f;
    long t = o->steps[param];
    if (o->kind == NN__SGD)
        return store ? nn__sgd_update(o, lr, wd, t, w, g, m, count, 1) : nn__sgd_update(o, lr, wd, t, w, g, m, count, 0);
    return store ? nn__adam_update(o, lr, wd, t, w, g, m, v, count, 1) : nn__adam_update(o, lr, wd, t, w, g, m, v, count, 0);
}

static void nn__optim_chunk(void *ctx, int chunk)
{
    const nn__optim_task *t = (const nn__optim_task *)ctx;
    size_t start = (size_t)chunk * NN__OPTIM_CHUNK, size = t->opt->net->params[t->param].size;
    size_t count = size - start < NN__OPTIM_CHUNK ? size - start : NN__OPTIM_CHUNK;
    t->opt->bad[chunk] = (unsigned char)nn__optim_run(t->opt, t->param, start, count, t->store);
}

/* The optimiser still fits its net: not inference-only, not rebuilt since it was made. */
static nn_status nn__optim_usable(const nn_optim *opt, const char *what)
{
    if (opt->net->builds != opt->builds)
        return nn__fail(NN_ERR_STATE, "%s: the net was rebuilt (nn_build) after this optimiser was made, "
                        "so its moments and step count belong to the old parameters; make a new optimiser", what);
    if (opt->net->inference)   /* its gradients are gone */
        return nn__fail(NN_ERR_STATE, "%s: the net is inference-only (nn_inference_only)", what);
    return NN_OK;
}

/* Says where a trial update was not finite: the first element of the first tensor. */
static nn_status nn__optim_diverged(nn_optim *opt, int param)
{
    nn_param *p = &opt->net->params[param];
    const nn_layer *L = opt->net->layers;
    size_t j;
    while (L->weight != p && L->bias != p) L++;   /* its layer: learnable, so a weight or bias */
    for (j = 0; j + 1 < p->size && !nn__optim_run(opt, param, j, 1, 0); j++) {}
    if (!isfinite(p->grad[j]))
        return nn__fail(NN_ERR_NUMERIC, "training diverged at step %ld: the gradient of %s (%s) is %g at "
                        "index %lu; the parameters and the optimiser are as before this step",
                        opt->step, p->name, nn_layer_name(L->desc.kind), p->grad[j], (unsigned long)j);
    return nn__fail(NN_ERR_NUMERIC, "training diverged at step %ld: the update of %s (%s) at index %lu "
                    "(value %g, gradient %g) is not finite (try a smaller learning rate); the parameters "
                    "and the optimiser are as before this step",
                    opt->step, p->name, nn_layer_name(L->desc.kind), (unsigned long)j, p->value[j], p->grad[j]);
}

/* Every tensor's update is first tried without storing; only when all of it is finite
   is it done. A trial reads what the update reads (not what it writes), and it is
   what makes a failed step leave everything as it was. */
/* A parameter the optimiser updates: learnable and not frozen. */
static int nn__trained(const nn_param *p) { return p->learnable && !p->options.frozen; }

/* Adds delta to the step count and to that of every parameter it updates. */
static void nn__optim_count(nn_optim *opt, long delta)
{
    int i;
    opt->step += delta;
    for (i = 0; i < opt->net->num_params; i++)
        if (nn__trained(&opt->net->params[i])) opt->steps[i] += delta;
}

static nn_status nn__optim_apply(nn_optim *opt)
{
    nn__optim_task t;
    int c;
    t.opt = opt;
    nn__optim_count(opt, 1);
    for (t.store = 0; t.store < 2; t.store++)
        for (t.param = 0; t.param < opt->net->num_params; t.param++) {
            nn_param *p = &opt->net->params[t.param];
            int chunks = (int)((p->size + NN__OPTIM_CHUNK - 1) / NN__OPTIM_CHUNK);
            if (!nn__trained(p)) continue;
            if (chunks > 1) nn__parallel(chunks, nn__optim_chunk, &t);
            else nn__optim_chunk(&t, 0);
            for (c = 0; !t.store && c < chunks; c++)
                if (opt->bad[c]) {
                    nn_status st = nn__optim_diverged(opt, t.param);
                    nn__optim_count(opt, -1);
                    return st;
                }
        }
    return NN_OK;
}

/* ---- Gradients across processes (nn_set_allreduce) -------------------------------
   Like DistributedDataParallel's buckets: the learnable tensors in reverse order (the
   order backward finishes them), packed into net->bucket until the next would not fit;
   a tensor of at least a bucket goes by itself, in place. Each bucket is summed by the
   hook, then divided by the world size. Without synchronised BatchNorm the buffers
   (running statistics) travel with them, so every process keeps the same: the average
   of the processes' running means is the running mean of the global batch (the update
   is linear in the batch mean). */

/* What of p is averaged across the processes: its gradient, its running statistic, or
   nothing (NULL: a buffer that synchronised BatchNorm already keeps equal). */
static float *nn__reduced(const nn_net *net, nn_param *p)
{
    return p->learnable ? p->grad : net->sync_bn ? NULL : p->value;
}

/* Hands one bucket, values [0, count) of buf, to the hook. */
static nn_status nn__allreduce_bucket(nn_net *net, float *buf, size_t count, int bucket,
                                      const nn_param *first, const nn_param *last, const char *fn)
{
    float world = (float)net->world_size;
    size_t j;
    int rc = net->allreduce(buf, count, net->allreduce_ctx);
    if (rc != 0)
        return nn__fail(NN_ERR_IO, "%s: the gradient all-reduce hook returned %d on bucket %d (%lu values, "
                        "%s to %s); the parameters are as before this step, and the processes are out of "
                        "step", fn, rc, bucket, (unsigned long)count, first->name, last->name);
    for (j = 0; j < count; j++) buf[j] /= world;
    return NN_OK;
}

static nn_status nn__allreduce_grads(nn_net *net, const char *fn)
{
    size_t fill = 0, at;
    int i, k, from = -1, to = -1, bucket = 0;
    nn_status st;
    if (!net->allreduce) return NN_OK;
    for (i = net->num_params - 1; i >= -1; i--) {
        nn_param *p = i >= 0 ? &net->params[i] : NULL;
        if (p && !nn__reduced(net, p)) continue;
        if (fill && (!p || fill + p->size > net->bucket_size)) {   /* send the bucket, unpack it */
            if ((st = nn__allreduce_bucket(net, net->bucket, fill, bucket++, &net->params[from],
                                           &net->params[to], fn)) != NN_OK)
                return st;
            for (k = from, at = 0; at < fill; k--) {
                nn_param *q = &net->params[k];
                if (!nn__reduced(net, q)) continue;
                memcpy(nn__reduced(net, q), net->bucket + at, q->size * sizeof(float));
                at += q->size;
            }
            fill = 0;
        }
        if (!p) break;
        if (p->size >= net->bucket_size) {
            if ((st = nn__allreduce_bucket(net, nn__reduced(net, p), p->size, bucket++, p, p, fn)) != NN_OK)
                return st;
            continue;
        }
        if (!fill) from = i;
        to = i;
        memcpy(net->bucket + fill, nn__reduced(net, p), p->size * sizeof(float));
        fill += p->size;
    }
    return NN_OK;
}

#define NN__BUCKET_FLOATS ((size_t)1 << 20)

NNDEF nn_status nn_set_allreduce(nn_net *net, nn_allreduce_fn sum, void *ctx, int world_size)
{
    nn__error_clear();
    size_t size = NN__BUCKET_FLOATS, values = 0;
    int i;
    if (!net) return nn__fail(NN_ERR_ARG, "nn_set_allreduce: net is NULL");
    if (sum && world_size < 1)
        return nn__fail(NN_ERR_ARG, "nn_set_allreduce: world size %d, expected >= 1", world_size);
    nn__free(net->bucket);
    net->bucket = NULL;
    net->bucket_size = 0;
    net->allreduce = NULL;
    if (!sum) return NN_OK;
    for (i = 0; net->built && i < net->num_params; i++) values += net->params[i].size;
    if (net->built && values < size) size = values ? values : 1;
    if (!(net->bucket = (float *)nn__alloc(size * sizeof(float))))
        return nn__fail(NN_ERR_NOMEM, "nn_set_allreduce: cannot allocate the %lu-value bucket", (unsigned long)size);
    net->bucket_size = size;
    net->allreduce = sum;
    net->allreduce_ctx = ctx;
    net->world_size = world_size;
    return NN_OK;
}

NNDEF nn_status nn_set_sync_batchnorm(nn_net *net, int enable)
{
    nn__error_clear();
    if (!net) return nn__fail(NN_ERR_ARG, "nn_set_sync_batchnorm: net is NULL");
    net->sync_bn = enable != 0;
    return NN_OK;
}

NNDEF nn_status nn_optim_step(nn_optim *opt)
{
    nn__error_clear();
    nn_status st;
    if (!opt) return nn__fail(NN_ERR_ARG, "nn_optim_step: opt is NULL");
    if ((st = nn__optim_usable(opt, "nn_optim_step")) != NN_OK) return st;
    if ((st = nn__allreduce_grads(opt->net, "nn_optim_step")) != NN_OK) return st;
    return nn__optim_apply(opt);
}

NNDEF nn_status nn_set_check_input(nn_net *net, int enable)
{
    nn__error_clear();
    if (!net) return nn__fail(NN_ERR_ARG, "nn_set_check_input: net is NULL");
    net->check_input = enable != 0;
    return NN_OK;
}

NNDEF nn_status nn_set_label_smoothing(nn_net *net, float eps)
{
    nn__error_clear();
    if (!net) return nn__fail(NN_ERR_ARG, "nn_set_label_smoothing: net is NULL");
    if (!(eps >= 0.0f && eps <= 1.0f))
        return nn__fail(NN_ERR_ARG, "nn_set_label_smoothing: eps %g, expected 0..1", eps);
    net->label_smoothing = eps;
    return NN_OK;
}

/* The first non-finite value of count floats, or -1. */
/* The index of the first value that is not finite, -1 when all are. */
static ptrdiff_t nn__first_nonfinite(const float *v, size_t count)
{
    size_t i;
    for (i = 0; i < count; i++) if (!isfinite(v[i])) return (ptrdiff_t)i;
    return -1;
}

/* An input batch with a NaN or infinity: NN_ERR_NUMERIC naming the sample. */
static nn_status nn__check_batch(const nn_net *net, const float *x, int n, const char *what)
{
    size_t size = nn_shape_size(net->input);
    ptrdiff_t at = nn__first_nonfinite(x, (size_t)n * size);
    if (at < 0) return NN_OK;
    return nn__fail(NN_ERR_NUMERIC, "%s: the input is %g at value %lu of sample %lu", what,
                    x[at], (unsigned long)((size_t)at % size), (unsigned long)((size_t)at / size));
}

/* Copies the net's buffers (running statistics) to or from opt->saved. */
static void nn__optim_buffers(nn_optim *opt, int restore)
{
    float *at = opt->saved;
    int i;
    for (i = 0; i < opt->net->num_params; i++) {
        nn_param *p = &opt->net->params[i];
        if (p->learnable) continue;
        if (restore) memcpy(p->value, at, p->size * sizeof(float));
        else memcpy(at, p->value, p->size * sizeof(float));
        at += p->size;
    }
}

NNDEF float nn_train_step(nn_net *net, nn_optim *opt, const float *x, const int *y, int n)
{
    nn__error_clear();
    const float *logits;
    float loss;
    int classes, i;
    nn_rng rng;
    long batches;
    if (!net || !opt || !x || !y) {
        nn__fail(NN_ERR_ARG, "nn_train_step: %s is NULL", !net ? "net" : !opt ? "opt" : !x ? "x" : "y");
        return NAN;
    }
    if (opt->net != net) {
        nn__fail(NN_ERR_ARG, "nn_train_step: the optimiser belongs to another net");
        return NAN;
    }
    if (nn__optim_usable(opt, "nn_train_step") != NN_OK) return NAN;
    if (n <= 0 || n > net->max_batch) {
        nn__fail(NN_ERR_ARG, "nn_train_step: %d samples, the net was built for 1 to %d", n, net->max_batch);
        return NAN;
    }
    classes = (int)nn_shape_size(nn_output_shape(net));
    for (i = 0; i < n; i++)
        if (y[i] < 0 || y[i] >= classes) {
            nn__fail(NN_ERR_ARG, "nn_train_step: label %d of sample %d is outside [0, %d)",
                     y[i], i, classes);
            return NAN;
        }
    if (net->check_input && nn__check_batch(net, x, n, "nn_train_step") != NN_OK) return NAN;
    /* what the forward changes besides the outputs, put back if the step fails */
    rng = net->rng;
    batches = net->train_batches;
    nn__optim_buffers(opt, 0);
    if (!(logits = nn_forward(net, x, n))) loss = NAN;   /* a synchronised BatchNorm's hook failed */
    else if (!isfinite(loss = net->label_smoothing != 0.0f
                                  ? nn_softmax_cross_entropy_smooth(logits, y, n, classes, net->label_smoothing,
                                                                    net->loss_grad)
                                  : nn_softmax_cross_entropy(logits, y, n, classes, net->loss_grad))) {
        /* say which layer's output it first appeared in */
        for (i = 0; i < net->num_layers; i++) {
            const nn_layer *L = &net->layers[i];
            if (nn__first_nonfinite(nn__t(net, net->plan[i].y), (size_t)n * nn_shape_size(L->out)) >= 0) break;
        }
        if (i < net->num_layers)
            nn__fail(NN_ERR_NUMERIC, "training diverged at step %ld: the loss is %g; the first non-finite "
                     "value is in the output of layer %d (%s)%s; the net and the optimiser are as before "
                     "this step", opt->step + 1, loss, i, nn_layer_name(net->layers[i].desc.kind),
                     nn__first_nonfinite(x, (size_t)n * nn_shape_size(net->input)) >= 0
                         ? " (the input batch has a NaN or infinity)" : "");
        else
            nn__fail(NN_ERR_NUMERIC, "training diverged at step %ld: the logits are finite but the loss "
                     "overflows to %g; the net and the optimiser are as before this step", opt->step + 1, loss);
    } else {
        if (nn_backward(net, net->loss_grad) == NN_OK && nn__allreduce_grads(net, "nn_train_step") == NN_OK &&
            nn__optim_apply(opt) == NN_OK)
            return loss;
    }
    nn__optim_buffers(opt, 1);
    net->rng = rng;
    net->train_batches = batches;
    return NAN;
}

NNDEF int nn_batch_correct(const nn_net *net, const int *labels, int n)
{
    nn__error_clear();
    const char *why = NULL;
    const float *logits;
    int classes, correct = 0, i;
    if (!net || !labels) {
        nn__fail(NN_ERR_ARG, "nn_batch_correct: %s is NULL", !net ? "net" : "labels");
        return -1;
    }
    if (!net->built) why = "the net is not built";
    else if (net->q) why = "the net is quantized (int8): it keeps no float outputs";
    else if (net->batch <= 0) why = "no forward since the net was built";
    if (why) {
        nn__fail(NN_ERR_STATE, "nn_batch_correct: %s", why);
        return -1;
    }
    if (n != net->batch) {
        nn__fail(NN_ERR_ARG, "nn_batch_correct: %d labels for the %d samples of the last forward", n, net->batch);
        return -1;
    }
    classes = (int)nn_shape_size(nn_output_shape(net));
    logits = nn__t(net, net->plan[net->num_layers - 1].y);
    for (i = 0; i < n; i++) correct += nn_argmax(logits + (size_t)i * (size_t)classes, classes) == labels[i];
    return correct;
}

/* ---- Weight averaging (EMA, Lookahead) ----------------------------------------------
   One copy of every parameter and buffer, back to back in the net's parameter order. */

struct nn_ema {
    nn_net *net;
    long    builds;       /* net->builds when made: a rebuild leaves it stale */
    float  *avg;
};

NNDEF nn_ema *nn_ema_new(nn_net *net)
{
    nn__error_clear();
    nn_ema *e;
    size_t total = 0, at = 0;
    int i;
    if (!net) { nn__fail(NN_ERR_ARG, "nn_ema_new: net is NULL"); return NULL; }
    if (!net->built) { nn__fail(NN_ERR_STATE, "nn_ema_new: build the net first"); return NULL; }
    for (i = 0; i < net->num_params; i++) total += net->params[i].size;
    e = (nn_ema *)nn__calloc(1, sizeof *e);
    if (!e || !(e->avg = (float *)nn__alloc((total ? total : 1) * sizeof(float)))) {
        nn__free(e);
        nn__fail(NN_ERR_NOMEM, "nn_ema_new: out of memory");
        return NULL;
    }
    e->net = net;
    e->builds = net->builds;
    for (i = 0; i < net->num_params; i++, at += net->params[i - 1].size)
        memcpy(e->avg + at, net->params[i].value, net->params[i].size * sizeof(float));
    return e;
}

NNDEF void nn_ema_free(nn_ema *e)
{
    if (!e) return;
    nn__free(e->avg);
    nn__free(e);
}

static nn_status nn__ema_usable(const nn_ema *e, const char *fn)
{
    if (!e) return nn__fail(NN_ERR_ARG, "%s: e is NULL", fn);
    if (e->net->builds != e->builds || !e->net->built)
        return nn__fail(NN_ERR_STATE, "%s: the net was rebuilt (nn_build) after the average was made", fn);
    return NN_OK;
}

/* mode 0: avg = lerp(avg, net, w); 1: net = avg; 2: exchange. fmaf rounds once, as
   PyTorch's vectorised lerp (without FMA hardware it is the C library's exact one). */
static nn_status nn__ema_run(nn_ema *e, int mode, float w, const char *fn)
{
    nn_status st = nn__ema_usable(e, fn);
    float *a = e ? e->avg : NULL;
    int i;
    size_t j;
    if (st != NN_OK) return st;
    for (i = 0; i < e->net->num_params; i++) {
        float *v = e->net->params[i].value;
        size_t size = e->net->params[i].size;
        for (j = 0; j < size; j++) {
            float t = a[j];
            if (mode == 0) a[j] = w < 0.5f ? nn__fmaf(w, v[j] - t, t) : nn__fmaf(t - v[j], 1.0f - w, v[j]);
            else if (mode == 1) v[j] = t;
            else { a[j] = v[j]; v[j] = t; }
        }
        a += size;
    }
    return NN_OK;
}

NNDEF nn_status nn_ema_update(nn_ema *e, float decay)
{
    nn__error_clear();
    if (!(decay >= 0.0f && decay <= 1.0f))
        return nn__fail(NN_ERR_ARG, "nn_ema_update: decay %g, expected 0..1", decay);
    return nn__ema_run(e, 0, (float)(1.0 - (double)decay), "nn_ema_update");
}
NNDEF nn_status nn_ema_apply(nn_ema *e) { nn__error_clear(); return nn__ema_run(e, 1, 0.0f, "nn_ema_apply"); }
NNDEF nn_status nn_ema_swap(nn_ema *e) { nn__error_clear(); return nn__ema_run(e, 2, 0.0f, "nn_ema_swap"); }

/* =================================================================================
   DATA
   ================================================================================= */

/* ---- Loading ---------------------------------------------------------------------
   Files are read in chunks of NN__CHUNK bytes and converted to float as they come,
   so a load needs no second copy of the data set in bytes. */

NNDEF void nn_dataset_free(nn_dataset *d)
{
    if (!d) return;
    if (d->owns_data) {
        nn__free(d->x);
        nn__free(d->y);
    }
    nn__free(d->order);
    memset(d, 0, sizeof *d);
}

#ifndef NN_NO_STDIO

#define NN__CHUNK (1u << 20)

/* Allocates x and y for n samples of the given shape; on failure frees and zeroes d. */
static nn_status nn__dataset_alloc(nn_dataset *d, int n, nn_shape shape, const char *what)
{
    size_t x_bytes;
    memset(d, 0, sizeof *d);
    if (!nn__mul_ok((size_t)n, nn_shape_size(shape), &x_bytes)
        || !nn__mul_ok(x_bytes, sizeof(float), &x_bytes))
        return nn__fail(NN_ERR_NOMEM, "%s: %d samples of %dx%dx%d overflow the address space",
                        what, n, shape.c, shape.h, shape.w);
    /* Not zeroed: the loaders write every element. */
    d->owns_data = 1;
    d->x = (float *)nn__alloc(x_bytes);
    d->y = (int *)nn__alloc((size_t)n * sizeof(int));
    if (!d->x || !d->y) {
        nn_dataset_free(d);
        return nn__fail(NN_ERR_NOMEM, "%s: cannot allocate %d samples of %dx%dx%d floats",
                        what, n, shape.c, shape.h, shape.w);
    }
    d->n = n;
    d->shape = shape;
    return NN_OK;
}

static nn_status nn__open(const char *path, FILE **f)
{
    *f = fopen(path, "rb");
    if (!*f) return nn__fail(NN_ERR_IO, "%s: cannot open (%s)", path, strerror(errno));
    if (fgetc(*f) == EOF && ferror(*f)) {   /* e.g. a directory, which opens on some systems */
        nn_status st = nn__fail(NN_ERR_IO, "%s: cannot read (%s)", path, strerror(errno));
        fclose(*f);
        return st;
    }
    rewind(*f);
    return NN_OK;
}

/* The size of an open file in bytes; leaves the position at the start. */
static nn_status nn__file_size(FILE *f, const char *path, size_t *size)
{
    long end;
    if (fseek(f, 0, SEEK_END) != 0 || (end = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
        return nn__fail(NN_ERR_IO, "%s: cannot determine the size (%s)", path, strerror(errno));
    *size = (size_t)end;
    return NN_OK;
}

/* Reads exactly size bytes or fails with a message naming the path. */
static nn_status nn__read_exact(FILE *f, const char *path, unsigned char *buf, size_t size)
{
    if (fread(buf, 1, size, f) == size) return NN_OK;
    if (ferror(f)) return nn__fail(NN_ERR_IO, "%s: read error (%s)", path, strerror(errno));
    return nn__fail(NN_ERR_FORMAT, "%s: file ended early (changed while being read?)", path);
}

/* Checks one CIFAR-10 batch file and returns its record count. */
static nn_status nn__cifar10_count(const char *path, int *records)
{
    FILE *f;
    size_t size;
    nn_status s = nn__open(path, &f);
    if (s != NN_OK) return s;
    s = nn__file_size(f, path, &size);
    fclose(f);
    if (s != NN_OK) return s;
    if (size == 0)
        return nn__fail(NN_ERR_FORMAT, "%s: size 0, the file is empty (expected %d-byte records)",
                        path, NN_CIFAR10_RECORD);
    if (size % NN_CIFAR10_RECORD != 0)
        return nn__fail(NN_ERR_FORMAT, "%s: size %zu is not a multiple of the %d-byte record",
                        path, size, NN_CIFAR10_RECORD);
    if (size / NN_CIFAR10_RECORD > (size_t)INT_MAX)
        return nn__fail(NN_ERR_FORMAT, "%s: %zu records, more than %d", path,
                        size / NN_CIFAR10_RECORD, INT_MAX);
    *records = (int)(size / NN_CIFAR10_RECORD);
    return NN_OK;
}

/* Reads `records` records of one file into x and y (which point at its first sample). */
static nn_status nn__cifar10_read(const char *path, int records, unsigned char *buf,
                                  float *x, int *y)
{
    const int pixels = NN_CIFAR10_RECORD - 1;
    const int per_chunk = (int)(NN__CHUNK / NN_CIFAR10_RECORD);
    FILE *f;
    int done = 0;
    nn_status s = nn__open(path, &f);
    if (s != NN_OK) return s;
    while (done < records && s == NN_OK) {
        int count = records - done < per_chunk ? records - done : per_chunk, r, i;
        s = nn__read_exact(f, path, buf, (size_t)count * NN_CIFAR10_RECORD);
        for (r = 0; r < count && s == NN_OK; r++) {
            const unsigned char *rec = buf + (size_t)r * NN_CIFAR10_RECORD;
            float *dst = x + (size_t)(done + r) * pixels;
            if (rec[0] >= 10) {
                s = nn__fail(NN_ERR_FORMAT, "%s: record %d has label %d, expected 0..9",
                             path, done + r, rec[0]);
                break;
            }
            y[done + r] = rec[0];
            for (i = 0; i < pixels; i++) dst[i] = (float)rec[1 + i];
        }
        done += count;
    }
    fclose(f);
    return s;
}

NNDEF nn_status nn_cifar10_load_files(const char *const *paths, int count, nn_dataset *out)
{
    nn__error_clear();
    int *records = NULL, total = 0, most = 0, i, at = 0;
    unsigned char *buf = NULL;
    nn_status s = NN_OK;
    if (!out) return nn__fail(NN_ERR_ARG, "cifar10: out is NULL");
    memset(out, 0, sizeof *out);
    if (!paths || count <= 0) return nn__fail(NN_ERR_ARG, "cifar10: no files given");
    for (i = 0; i < count; i++)
        if (!paths[i]) return nn__fail(NN_ERR_ARG, "cifar10: path %d is NULL", i);
    records = (int *)nn__calloc((size_t)count, sizeof(int));
    if (!records) return nn__fail(NN_ERR_NOMEM, "cifar10: cannot allocate %d counts", count);
    /* First check every file, so that a bad last file fails before the big allocation. */
    for (i = 0; i < count && s == NN_OK; i++) {
        s = nn__cifar10_count(paths[i], &records[i]);
        if (s == NN_OK && records[i] > INT_MAX - total)
            s = nn__fail(NN_ERR_FORMAT, "cifar10: more than %d records in all", INT_MAX);
        if (s == NN_OK) total += records[i];
        if (s == NN_OK && records[i] > most) most = records[i];
    }
    if (s == NN_OK) s = nn__dataset_alloc(out, total, nn_shape3(3, 32, 32), "cifar10");
    if (s == NN_OK) {   /* a chunk, or the largest file if that is smaller */
        size_t chunk = NN__CHUNK / NN_CIFAR10_RECORD * NN_CIFAR10_RECORD;
        size_t largest = (size_t)most * NN_CIFAR10_RECORD;
        buf = (unsigned char *)nn__alloc(largest < chunk ? largest : chunk);
        if (!buf) s = nn__fail(NN_ERR_NOMEM, "cifar10: cannot allocate the read buffer");
    }
    for (i = 0; i < count && s == NN_OK; i++) {
        s = nn__cifar10_read(paths[i], records[i], buf,
                             out->x + (size_t)at * (NN_CIFAR10_RECORD - 1), out->y + at);
        at += records[i];
    }
    nn__free(buf);
    nn__free(records);
    if (s != NN_OK) {
        nn_dataset_free(out);
        return s;
    }
    out->num_classes = 10;
    return NN_OK;
}

NNDEF nn_status nn_cifar10_load(const char *dir, nn_dataset *train, nn_dataset *test)
{
    nn__error_clear();
    static const char *const names[6] = {
        "data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
        "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"
    };
    char *storage;
    const char *paths[6];
    size_t stride;
    nn_status s = NN_OK;
    int i;
    if (train) memset(train, 0, sizeof *train);
    if (test) memset(test, 0, sizeof *test);
    if (!dir) return nn__fail(NN_ERR_ARG, "cifar10: dir is NULL");
    if (!train && !test) return nn__fail(NN_ERR_ARG, "cifar10: train and test are both NULL");
    if (train == test) return nn__fail(NN_ERR_ARG, "cifar10: train and test are the same data set");
    stride = strlen(dir) + 32;   /* "/" + the longest name + NUL */
    storage = (char *)nn__alloc(6 * stride);
    if (!storage) return nn__fail(NN_ERR_NOMEM, "cifar10: cannot allocate file names");
    for (i = 0; i < 6; i++) {
        char *p = storage + (size_t)i * stride;
        snprintf(p, stride, "%s/%s", dir, names[i]);
        paths[i] = p;
    }
    if (train) s = nn_cifar10_load_files(paths, 5, train);
    if (s == NN_OK && test) {
        s = nn_cifar10_load_files(paths + 5, 1, test);
        if (s != NN_OK && train) nn_dataset_free(train);
    }
    nn__free(storage);
    return s;
}

static uint32_t nn__be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* Opens an IDX file of unsigned bytes with `ndim` dimensions, checks the magic, that
   every dimension is in 1..INT_MAX and that the size is exactly header + data.
   Leaves f positioned at the data. */
static nn_status nn__idx_open(const char *path, int ndim, FILE **f, int *dims)
{
    unsigned char header[16];
    size_t header_size = 4 + 4 * (size_t)ndim, size, expect = 1;
    uint32_t magic, want = 0x00000800u | (uint32_t)ndim;
    nn_status s;
    int i;
    if ((s = nn__open(path, f)) != NN_OK) return s;
    if ((s = nn__file_size(*f, path, &size)) != NN_OK) goto fail;
    if (size < header_size) {
        s = nn__fail(NN_ERR_FORMAT, "%s: size %zu is smaller than the %zu-byte IDX header",
                     path, size, header_size);
        goto fail;
    }
    if ((s = nn__read_exact(*f, path, header, header_size)) != NN_OK) goto fail;
    magic = nn__be32(header);
    if (magic != want) {
        s = nn__fail(NN_ERR_FORMAT, "%s: magic 0x%08x, expected 0x%08x (IDX, unsigned bytes, "
                     "%d dimension%s; gzipped files must be unpacked first)",
                     path, (unsigned)magic, (unsigned)want, ndim, ndim == 1 ? "" : "s");
        goto fail;
    }
    for (i = 0; i < ndim; i++) {
        uint32_t dim = nn__be32(header + 4 + 4 * i);
        if (dim == 0 || dim > (uint32_t)INT_MAX) {
            s = nn__fail(NN_ERR_FORMAT, "%s: dimension %d is %lu, expected 1..%d",
                         path, i, (unsigned long)dim, INT_MAX);
            goto fail;
        }
        dims[i] = (int)dim;
        if (!nn__mul_ok(expect, dim, &expect)) {
            s = nn__fail(NN_ERR_FORMAT, "%s: dimensions overflow the address space", path);
            goto fail;
        }
    }
    if (expect > SIZE_MAX - header_size || size != header_size + expect) {
        s = nn__fail(NN_ERR_FORMAT, "%s: size %zu, expected %zu for the dimensions in the header",
                     path, size, expect > SIZE_MAX - header_size ? SIZE_MAX : header_size + expect);
        goto fail;
    }
    return NN_OK;
fail:
    fclose(*f);
    *f = NULL;
    return s;
}

NNDEF nn_status nn_idx_load(const char *images_path, const char *labels_path, nn_dataset *out)
{
    nn__error_clear();
    FILE *fi = NULL, *fl = NULL;
    int idims[3], ldims[1], max_label = 0;
    size_t per_image, i, done, total;
    unsigned char *buf = NULL;
    nn_status s;
    if (!out) return nn__fail(NN_ERR_ARG, "idx: out is NULL");
    memset(out, 0, sizeof *out);
    if (!images_path || !labels_path) return nn__fail(NN_ERR_ARG, "idx: a path is NULL");
    if ((s = nn__idx_open(images_path, 3, &fi, idims)) != NN_OK) return s;
    if ((s = nn__idx_open(labels_path, 1, &fl, ldims)) != NN_OK) goto done;
    if (idims[0] != ldims[0]) {
        s = nn__fail(NN_ERR_FORMAT, "%s has %d images but %s has %d labels",
                     images_path, idims[0], labels_path, ldims[0]);
        goto done;
    }
    if ((s = nn__dataset_alloc(out, idims[0], nn_shape3(1, idims[1], idims[2]), images_path)) != NN_OK)
        goto done;
    per_image = nn_shape_size(out->shape);
    total = (size_t)out->n * per_image;   /* >= n: the labels fit too */
    buf = (unsigned char *)nn__alloc(total < NN__CHUNK ? total : NN__CHUNK);
    if (!buf) {
        s = nn__fail(NN_ERR_NOMEM, "idx: cannot allocate the read buffer");
        goto done;
    }
    for (done = 0; done < total && s == NN_OK; done += NN__CHUNK) {
        size_t count = total - done < NN__CHUNK ? total - done : NN__CHUNK;
        s = nn__read_exact(fi, images_path, buf, count);
        for (i = 0; i < count && s == NN_OK; i++) out->x[done + i] = (float)buf[i];
    }
    for (done = 0; done < (size_t)out->n && s == NN_OK; done += NN__CHUNK) {
        size_t count = (size_t)out->n - done < NN__CHUNK ? (size_t)out->n - done : NN__CHUNK;
        s = nn__read_exact(fl, labels_path, buf, count);
        for (i = 0; i < count && s == NN_OK; i++) {
            out->y[done + i] = buf[i];
            if (buf[i] > max_label) max_label = buf[i];
        }
    }
    out->num_classes = max_label + 1;
done:
    nn__free(buf);
    if (fi) fclose(fi);
    if (fl) fclose(fl);
    if (s != NN_OK) nn_dataset_free(out);
    return s;
}

#endif /* NN_NO_STDIO */

/* ---- Preprocessing ---------------------------------------------------------------
   Statistics accumulate in double: 50,000 x 255 summed in float loses digits. */

/* The checks every data-set function starts with: not NULL, not empty, x there (and
   y where labels are read). */
static nn_status nn__dataset_check(const nn_dataset *d, int needs_y, const char *fn)
{
    if (!d) return nn__fail(NN_ERR_ARG, "%s: the data set is NULL", fn);
    if (d->n <= 0 || nn_shape_size(d->shape) == 0)
        return nn__fail(NN_ERR_ARG, "%s: the data set is empty", fn);
    if (!d->x || (needs_y && !d->y))
        return nn__fail(NN_ERR_ARG, "%s: the data set's %s is NULL", fn, d->x ? "y" : "x");
    return NN_OK;
}

NNDEF nn_status nn_mean_image(const nn_dataset *d, float *mean)
{
    nn__error_clear();
    size_t size, j;
    double *sum;
    int i;
    nn_status st = nn__dataset_check(d, 0, "mean image");
    if (st != NN_OK) return st;
    if (!mean) return nn__fail(NN_ERR_ARG, "mean image: mean is NULL");
    size = nn_shape_size(d->shape);
    sum = (double *)nn__calloc(size, sizeof(double));
    if (!sum) return nn__fail(NN_ERR_NOMEM, "mean image: cannot allocate %zu doubles", size);
    for (i = 0; i < d->n; i++) {
        const float *x = d->x + (size_t)i * size;
        for (j = 0; j < size; j++) sum[j] += x[j];
    }
    for (j = 0; j < size; j++) mean[j] = (float)(sum[j] / d->n);
    nn__free(sum);
    return NN_OK;
}

NNDEF nn_status nn_subtract_image(nn_dataset *d, const float *mean)
{
    nn__error_clear();
    size_t size, j;
    int i;
    nn_status st = nn__dataset_check(d, 0, "nn_subtract_image");
    if (st != NN_OK) return st;
    size = nn_shape_size(d->shape);
    if (!mean) return nn__fail(NN_ERR_ARG, "nn_subtract_image: mean is NULL");
    if (!nn__vfinite(mean, size))
        return nn__fail(NN_ERR_ARG, "nn_subtract_image: the mean image is not finite");
    for (i = 0; i < d->n; i++) {
        float *x = d->x + (size_t)i * size;
        for (j = 0; j < size; j++) x[j] -= mean[j];
    }
    return NN_OK;
}

/* Two passes (mean, then squared deviations from it), each summed per channel. */
NNDEF nn_status nn_channel_stats(const nn_dataset *d, float *mean, float *std)
{
    nn__error_clear();
    size_t plane, j;
    int i, c;
    nn_status st = nn__dataset_check(d, 0, "nn_channel_stats");
    if (st != NN_OK) return st;
    if (!mean || !std)
        return nn__fail(NN_ERR_ARG, "nn_channel_stats: %s is NULL", mean ? "std" : "mean");
    plane = (size_t)d->shape.h * (size_t)d->shape.w;
    for (c = 0; c < d->shape.c; c++) {
        double sum = 0.0, dev = 0.0, m, count = (double)d->n * (double)plane;
        for (i = 0; i < d->n; i++) {
            const float *x = d->x + ((size_t)i * d->shape.c + c) * plane;
            for (j = 0; j < plane; j++) sum += x[j];
        }
        m = count > 0 ? sum / count : 0.0;
        for (i = 0; i < d->n; i++) {
            const float *x = d->x + ((size_t)i * d->shape.c + c) * plane;
            for (j = 0; j < plane; j++) dev += (x[j] - m) * (x[j] - m);
        }
        mean[c] = (float)m;
        std[c] = count > 0 ? (float)sqrt(dev / count) : 0.0f;
    }
    return NN_OK;
}

NNDEF nn_status nn_normalize_channels(nn_dataset *d, const float *mean, const float *std)
{
    nn__error_clear();
    size_t plane, j;
    int i, c;
    nn_status st = nn__dataset_check(d, 0, "nn_normalize_channels");
    if (st != NN_OK) return st;
    if (!mean || !std)
        return nn__fail(NN_ERR_ARG, "nn_normalize_channels: %s is NULL", mean ? "std" : "mean");
    for (c = 0; c < d->shape.c; c++)
        if (!isfinite(mean[c]) || !(std[c] >= 0.0f) || !isfinite(std[c]))
            return nn__fail(NN_ERR_ARG, "nn_normalize_channels: channel %d has mean %g and std %g, "
                            "expected finite values and std >= 0", c, mean[c], std[c]);
    plane = (size_t)d->shape.h * (size_t)d->shape.w;
    for (c = 0; c < d->shape.c; c++) {
        float m = mean[c], inv = std[c] > 0.0f ? 1.0f / std[c] : 1.0f;
        for (i = 0; i < d->n; i++) {
            float *x = d->x + ((size_t)i * d->shape.c + c) * plane;
            for (j = 0; j < plane; j++) x[j] = (x[j] - m) * inv;
        }
    }
    return NN_OK;
}

NNDEF nn_status nn_scale_pixels(nn_dataset *d, float factor)
{
    nn__error_clear();
    size_t count, j;
    nn_status st = nn__dataset_check(d, 0, "nn_scale_pixels");
    if (st != NN_OK) return st;
    if (!isfinite(factor)) return nn__fail(NN_ERR_ARG, "nn_scale_pixels: factor %g is not finite", factor);
    count = (size_t)d->n * nn_shape_size(d->shape);
    for (j = 0; j < count; j++) d->x[j] *= factor;
    return NN_OK;
}

/* ---- Batcher ---------------------------------------------------------------------- */

/* Augmentation's own stream, so that the shuffle draws the same numbers with or
   without it. */
static nn_rng nn__augment_rng(uint64_t seed) { return nn_rng_new(seed ^ 0x6a09e667f3bcc909ULL); }

/* NN_OK if augmentation a fits the samples of d (a checked set). */
static nn_status nn__augment_check(const nn_dataset *d, nn_augment a, const char *fn)
{
    int limit = d->shape.h < d->shape.w ? d->shape.h : d->shape.w;
    if (a.flip < 0 || a.flip > 2)
        return nn__fail(NN_ERR_ARG, "%s: augmentation flip %d, expected 0, 1 or 2", fn, a.flip);
    if (a.reflect < 0 || a.reflect > 1 || (a.reflect && !a.crop_pad))
        return nn__fail(NN_ERR_ARG, "%s: augmentation reflect %d, expected 0 or 1 (1 with a crop_pad)",
                        fn, a.reflect);
    if (a.crop_pad < 0 || (a.crop_pad > 0 && a.crop_pad >= limit))
        return nn__fail(NN_ERR_ARG, "%s: augmentation crop_pad %d, expected 0..%d for %dx%d images",
                        fn, a.crop_pad, limit - 1, d->shape.h, d->shape.w);
    if ((a.flip || a.crop_pad) && (d->shape.h < 2 || d->shape.w < 2))
        return nn__fail(NN_ERR_ARG, "%s: samples of shape (%d, %d, %d) are not images, no augmentation "
                        "(h and w must be > 1)", fn, d->shape.c, d->shape.h, d->shape.w);
    return NN_OK;
}

NNDEF nn_status nn_set_augment(nn_dataset *d, nn_augment a)
{
    nn__error_clear();
    nn_status st = nn__dataset_check(d, 0, "nn_set_augment");
    if (st != NN_OK || (st = nn__augment_check(d, a, "nn_set_augment")) != NN_OK) return st;
    if (!d->aug_rng.inc) d->aug_rng = nn__augment_rng(0);   /* never seeded (inc is odd) */
    d->augment = a;
    return NN_OK;
}

/* Reflection of an index into [0, n) without repeating the edge (pad < n). */
static int nn__reflect(int i, int n) { return i < 0 ? -i : i >= n ? 2 * (n - 1) - i : i; }

/* out = src cut at offset (oy, ox) of src padded by pad zeros (or by reflection), then
   mirrored if flip: out[c][i][j] = src[c][i + oy - pad][(flip ? w-1-j : j) + ox - pad],
   0 outside src (reflect: the index reflected back inside). */
static void nn__augment_copy(float *out, const float *src, nn_shape s, int pad, int oy, int ox,
                             int flip, int reflect)
{
    int c, i, j;
    for (c = 0; c < s.c; c++)
        for (i = 0; i < s.h; i++) {
            int sy = i + oy - pad;
            float *o = out + ((size_t)c * s.h + i) * s.w;
            const float *row;
            if (reflect) sy = nn__reflect(sy, s.h);
            if (sy < 0 || sy >= s.h) { memset(o, 0, (size_t)s.w * sizeof(float)); continue; }
            row = src + ((size_t)c * s.h + sy) * s.w;
            for (j = 0; j < s.w; j++) {
                int sx = (flip ? s.w - 1 - j : j) + ox - pad;
                if (reflect) sx = nn__reflect(sx, s.w);
                o[j] = sx >= 0 && sx < s.w ? row[sx] : 0.0f;
            }
        }
}

/* Alternating flip's coin of sample k: one PCG32 draw from the seed and the index. */
static int nn__flip_coin(uint64_t seed, int k)
{
    nn_rng r = nn_rng_new(seed ^ (0x9e3779b97f4a7c15ULL * ((uint64_t)k + 1u)));
    return (int)(nn_rng_u32(&r) >> 31);
}

NNDEF nn_status nn_batch_start(nn_dataset *d, uint64_t seed)
{
    nn__error_clear();
    int i;
    nn_status st = nn__dataset_check(d, 0, "batcher");
    if (st != NN_OK) return st;
    nn__free(d->order);
    d->order = (int *)nn__alloc((size_t)d->n * sizeof(int));
    if (!d->order) return nn__fail(NN_ERR_NOMEM, "batcher: cannot allocate %d indices", d->n);
    for (i = 0; i < d->n; i++) d->order[i] = i;
    d->rng = nn_rng_new(seed);
    nn_rng_shuffle(&d->rng, d->order, d->n);
    d->aug_rng = nn__augment_rng(seed);
    d->aug_seed = seed;
    d->cursor = 0;
    d->epoch = 0;
    return NN_OK;
}

NNDEF int nn_shard(int n, int rank, int world_size, int *first)
{
    int count;
    if (first) *first = 0;
    if (n < 0 || world_size < 1 || rank < 0 || rank >= world_size) return 0;
    count = n / world_size + (rank < n % world_size);
    if (first) *first = rank * (n / world_size) + (rank < n % world_size ? rank : n % world_size);
    return count;
}

NNDEF nn_status nn_batch_shard(nn_dataset *d, int rank, int world_size)
{
    nn__error_clear();
    if (!d) return nn__fail(NN_ERR_ARG, "nn_batch_shard: d is NULL");
    if (world_size < 1 || rank < 0 || rank >= world_size)
        return nn__fail(NN_ERR_ARG, "nn_batch_shard: rank %d of %d processes, expected world size >= 1 "
                        "and 0 <= rank < world size", rank, world_size);
    d->shard_rank = rank;
    d->shard_world = world_size;
    return NN_OK;
}

NNDEF nn_status nn_next_batch(nn_dataset *d, int n, float *x, int *y)
{
    nn__error_clear();
    size_t size;
    int i, first = 0, count = n;   /* this process's positions of the batch (sharded) */
    nn_status st = nn__dataset_check(d, y != NULL, "nn_next_batch");
    if (st != NN_OK) return st;
    if (n <= 0) return nn__fail(NN_ERR_ARG, "nn_next_batch: %d samples, expected > 0", n);
    if (d->cursor < 0 || d->cursor >= d->n)
        return nn__fail(NN_ERR_ARG, "nn_next_batch: cursor %d outside 0..%d (zero the batcher "
                        "fields of a data set you fill yourself)", d->cursor, d->n - 1);
    if ((st = nn__augment_check(d, d->augment, "nn_next_batch")) != NN_OK) return st;
    if (d->shard_world > 1) {
        if (d->shard_rank < 0 || d->shard_rank >= d->shard_world || n < d->shard_world)
            return nn__fail(NN_ERR_ARG, "nn_next_batch: a global batch of %d for rank %d of %d processes "
                            "(nn_batch_shard), expected at least one sample per process", n,
                            d->shard_rank, d->shard_world);
        count = nn_shard(n, d->shard_rank, d->shard_world, &first);
    }
    size = nn_shape_size(d->shape);
    for (i = 0; i < n; i++) {
        int k = d->order ? d->order[d->cursor] : d->cursor, mine = i >= first && i < first + count;
        float *xi = x && mine ? x + (size_t)(i - first) * size : NULL;
        if (d->augment.flip || d->augment.crop_pad) {
            /* Drawn whether or not x is wanted, so the stream follows the samples. */
            int pad = d->augment.crop_pad, oy = pad, ox = pad, flip = 0;
            if (pad) {
                oy = (int)nn_rng_below(&d->aug_rng, 2u * (uint32_t)pad + 1u);
                ox = (int)nn_rng_below(&d->aug_rng, 2u * (uint32_t)pad + 1u);
            }
            if (d->augment.flip == 1) flip = (int)(nn_rng_u32(&d->aug_rng) >> 31);
            if (d->augment.flip == 2) flip = (nn__flip_coin(d->aug_seed, k) + d->epoch) & 1;
            if (xi) nn__augment_copy(xi, d->x + (size_t)k * size, d->shape, pad, oy, ox, flip, d->augment.reflect);
        } else if (xi) memcpy(xi, d->x + (size_t)k * size, size * sizeof(float));
        if (y && mine) y[i - first] = d->y[k];
        if (++d->cursor == d->n) {
            /* End of an epoch: count it and reshuffle at once, so that d->epoch is
               the number of completed epochs right after the batch that ended it. */
            if (d->order) nn_rng_shuffle(&d->rng, d->order, d->n);
            d->cursor = 0;
            d->epoch++;
        }
    }
    return NN_OK;
}

/* =================================================================================
   MODEL FILES
   ================================================================================= */

/* ---- Preprocessing and class names ------------------------------------------------ */

static nn_status nn__copy_floats(float **dst, const float *src, size_t n)
{
    float *copy = (float *)nn__alloc(n * sizeof(float));
    if (!copy) return nn__fail(NN_ERR_NOMEM, "out of memory");
    memcpy(copy, src, n * sizeof(float));
    nn__free(*dst);
    *dst = copy;
    return NN_OK;
}

NNDEF nn_status nn_set_preprocess_mean_image(nn_net *net, const float *mean_image)
{
    nn__error_clear();
    nn_status st;
    if (!net || !mean_image) return nn__fail(NN_ERR_ARG, "nn_set_preprocess_mean_image: net or mean_image is NULL");
    if (!nn__vfinite(mean_image, nn_shape_size(net->input)))
        return nn__fail(NN_ERR_ARG, "preprocessing: the mean image holds a NaN or an infinity");
    if ((st = nn__copy_floats(&net->preprocess_mean, mean_image, nn_shape_size(net->input))) != NN_OK) return st;
    nn__free(net->preprocess_std);
    net->preprocess_std = NULL;
    net->preprocess = NN_PREPROCESS_MEAN_IMAGE;
    net->preprocess_scale = 1.0f;
    return NN_OK;
}

NNDEF nn_status nn_set_preprocess_channels(nn_net *net, float scale, const float *mean,
                                           const float *std)
{
    nn__error_clear();
    int c;
    float *m = NULL, *s = NULL;
    if (!net || !mean || !std) return nn__fail(NN_ERR_ARG, "nn_set_preprocess_channels: net, mean or std is NULL");
    if (!isfinite(scale) || scale == 0.0f)
        return nn__fail(NN_ERR_ARG, "preprocessing: scale %g, expected a finite non-zero number", scale);
    for (c = 0; c < net->input.c; c++)
        if (!isfinite(mean[c]) || !(std[c] > 0.0f) || !isfinite(std[c]))
            return nn__fail(NN_ERR_ARG, "preprocessing: channel %d has mean %g and std %g, expected a "
                            "finite mean and a finite std > 0", c, mean[c], std[c]);
    if (nn__copy_floats(&m, mean, (size_t)net->input.c) != NN_OK ||
        nn__copy_floats(&s, std, (size_t)net->input.c) != NN_OK) {
        nn__free(m);
        return NN_ERR_NOMEM;
    }
    nn__free(net->preprocess_mean);
    nn__free(net->preprocess_std);
    net->preprocess_mean = m;
    net->preprocess_std = s;
    net->preprocess = NN_PREPROCESS_CHANNELS;
    net->preprocess_scale = scale;
    return NN_OK;
}

NNDEF nn_preprocess_kind nn_get_preprocess(const nn_net *net)
{
    nn__error_clear();
    if (!net) { nn__null_net("nn_get_preprocess"); return NN_PREPROCESS_NONE; }
    return net->preprocess;
}

NNDEF nn_status nn_preprocess(const nn_net *net, const float *pixels, float *x, int n)
{
    nn__error_clear();
    size_t plane, size, i;
    int s;
    if (!net || n < 0 || (n > 0 && (!pixels || !x)))
        return nn__fail(NN_ERR_ARG, "nn_preprocess: net, pixels or x is NULL, or n (%d) < 0", n);
    plane = (size_t)net->input.h * net->input.w;
    size = nn_shape_size(net->input);
    for (s = 0; s < n; s++, pixels += size, x += size)
        for (i = 0; i < size; i++) {
            float v = net->preprocess == NN_PREPROCESS_NONE ? pixels[i] : pixels[i] * net->preprocess_scale;
            if (net->preprocess == NN_PREPROCESS_MEAN_IMAGE) v -= net->preprocess_mean[i];
            if (net->preprocess == NN_PREPROCESS_CHANNELS)
                v = (v - net->preprocess_mean[i / plane]) / net->preprocess_std[i / plane];
            x[i] = v;
        }
    return NN_OK;
}

/* 1 if s is well-formed UTF-8 (no overlong forms, surrogates or values past U+10FFFF). */
static int nn__utf8_ok(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned c = *p++, v, min;
        int more = c < 0x80 ? 0 : (c & 0xe0) == 0xc0 ? 1 : (c & 0xf0) == 0xe0 ? 2 : (c & 0xf8) == 0xf0 ? 3 : -1;
        if (more < 0) return 0;
        min = more == 1 ? 0x80 : more == 2 ? 0x800 : 0x10000;
        for (v = c & (0x7fu >> more); more > 0; more--, p++) {
            if ((*p & 0xc0) != 0x80) return 0;
            v = v << 6 | (*p & 0x3fu);
        }
        if (c >= 0x80 && (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))) return 0;
    }
    return 1;
}

/* A class name a model file can hold: non-empty UTF-8 without a comma (the separator). */
static nn_status nn__class_name_check(const char *name, int i)
{
    if (!name[0] || strchr(name, ',') || !nn__utf8_ok(name))
        return nn__fail(NN_ERR_ARG, "class name %d ('%s') must be non-empty UTF-8 without a comma", i, name);
    return NN_OK;
}

NNDEF nn_status nn_set_class_names(nn_net *net, const char *const *names, int count)
{
    nn__error_clear();
    size_t total = 0, outputs;
    int i;
    char *all = NULL, *p;
    if (!net || count < 0 || (count > 0 && !names))
        return nn__fail(NN_ERR_ARG, "nn_set_class_names: net or names is NULL, or count (%d) < 0", count);
    if (!net->built) return nn__fail(NN_ERR_STATE, "nn_set_class_names: build the net first");
    outputs = nn_shape_size(nn_output_shape(net));
    if (count && (size_t)count != outputs)
        return nn__fail(NN_ERR_ARG, "nn_set_class_names: %d names for %zu outputs", count, outputs);
    for (i = 0; i < count; i++) {
        if (!names[i]) return nn__fail(NN_ERR_ARG, "nn_set_class_names: name %d is NULL", i);
        if (nn__class_name_check(names[i], i) != NN_OK) return NN_ERR_ARG;
        total += strlen(names[i]) + 1;
    }
    if (count && !(all = (char *)nn__alloc(total))) return nn__fail(NN_ERR_NOMEM, "out of memory");
    for (p = all, i = 0; i < count; i++) { strcpy(p, names[i]); p += strlen(names[i]) + 1; }
    nn__free(net->class_names);
    net->class_names = all;
    net->num_class_names = count;
    return NN_OK;
}

NNDEF const char *nn_class_name(const nn_net *net, int i)
{
    nn__error_clear();
    const char *p;
    if (!net) { nn__fail(NN_ERR_ARG, "nn_class_name: net is NULL"); return NULL; }
    if (i < 0 || i >= net->num_class_names) return NULL;
    for (p = net->class_names; i--; ) p += strlen(p) + 1;
    return p;
}

/* ---- A growable byte buffer ------------------------------------------------------- */

typedef struct { unsigned char *data; size_t len, cap; int failed; } nn__buf;

static void nn__buf_put(nn__buf *b, const void *bytes, size_t n)
{
    if (b->failed) return;
    if (n > SIZE_MAX / 2 - b->len) { b->failed = 1; return; }
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        unsigned char *grown;
        while (cap < b->len + n) cap *= 2;
        if (!(grown = (unsigned char *)nn__alloc(cap))) { b->failed = 1; return; }
        if (b->len) memcpy(grown, b->data, b->len);
        nn__free(b->data);
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, bytes, n);
    b->len += n;
}

static void nn__buf_printf(nn__buf *b, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n >= 0) nn__buf_put(b, small, (size_t)n < sizeof small ? (size_t)n : sizeof small - 1);
}

/* ---- safetensors writer -------------------------------------------------------------
   Tensors are written in the net's parameter order (then the optimiser state of a
   checkpoint); BatchNorm layers also get PyTorch's "num_batches_tracked" (I64). */

static int nn__little_endian(void) { const uint16_t one = 1; return *(const unsigned char *)&one == 1; }

/* Appends n floats as little-endian bytes. */
static void nn__buf_put_f32(nn__buf *b, const float *v, size_t n)
{
    size_t i;
    if (nn__little_endian()) { nn__buf_put(b, v, n * sizeof(float)); return; }
    for (i = 0; i < n; i++) {
        uint32_t u;
        unsigned char le[4];
        memcpy(&u, &v[i], 4);
        le[0] = (unsigned char)u; le[1] = (unsigned char)(u >> 8);
        le[2] = (unsigned char)(u >> 16); le[3] = (unsigned char)(u >> 24);
        nn__buf_put(b, le, 4);
    }
}

static void nn__json_tensor(nn__buf *h, const char *name, const char *dtype, int ndim,
                            const int *shape, size_t *offset, size_t bytes)
{
    int i;
    nn__buf_printf(h, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[", name, dtype);
    for (i = 0; i < ndim; i++) nn__buf_printf(h, "%s%d", i ? "," : "", shape[i]);
    nn__buf_printf(h, "],\"data_offsets\":[%zu,%zu]}", *offset, *offset + bytes);
    *offset += bytes;
}

static void nn__json_floats(nn__buf *h, const char *key, const float *v, size_t n)
{
    size_t i;
    nn__buf_printf(h, ",\"%s\":\"", key);
    for (i = 0; i < n; i++) nn__buf_printf(h, "%s%.9g", i ? "," : "", v[i]);
    nn__buf_put(h, "\"", 1);
}

/* Appends s as the body of a JSON string: quotes, backslashes and control characters
   escaped, everything else (UTF-8 included) as it is. */
static void nn__json_escape(nn__buf *b, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        const char *short_form = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == '\n' ? "\\n" : c == '\t' ? "\\t"
                               : c == '\r' ? "\\r" : c == '\b' ? "\\b" : c == '\f' ? "\\f" : NULL;
        if (short_form) nn__buf_put(b, short_form, 2);
        else if (c < 0x20) nn__buf_printf(b, "\\u%04x", c);
        else nn__buf_put(b, s, 1);
    }
}

/* The architecture as text: "Flatten;Linear out=100;LeakyReLU alpha=0.02;...". */
static void nn__json_layers(nn__buf *h, const nn_net *net)
{
    int i;
    nn__buf_printf(h, ",\"layers\":\"");
    for (i = 0; i < net->num_layers; i++) {
        const nn_layer_desc *d = &net->layers[i].desc;
        int conv = d->kind == NN_CONV2D, bn = d->kind == NN_BATCHNORM;
        int spatial = conv || d->kind == NN_MAXPOOL2D || d->kind == NN_AVGPOOL2D;
        nn__buf_printf(h, "%s%s", i ? ";" : "", nn_layer_name(d->kind));
        if (d->out) nn__buf_printf(h, " out=%d", d->out);
        float alpha = d->kind == NN_LEAKY_RELU ? d->negative_slope : d->kind == NN_SCALE ? d->factor
                    : d->kind == NN_DROPOUT ? d->p : d->kind == NN_SOFTPLUS ? d->beta : 0.0f;
        if (d->kernel_h) nn__buf_printf(h, " kernel=%d", d->kernel_h);
        if (spatial && d->kernel_w != d->kernel_h) nn__buf_printf(h, " kernel_w=%d", d->kernel_w);
        if (d->stride_h) nn__buf_printf(h, " stride=%d", d->stride_h);
        if (spatial && d->stride_w != d->stride_h) nn__buf_printf(h, " stride_w=%d", d->stride_w);
        if (d->pad_h) nn__buf_printf(h, " pad=%d", d->pad_h);
        if (spatial && d->pad_w != d->pad_h) nn__buf_printf(h, " pad_w=%d", d->pad_w);
        /* the newer options only where they are not PyTorch's default (Conv2d's setup
           has made a 0 dilation and groups 1), so that older files stay as they were */
        if (conv && d->dilation_h > 1) nn__buf_printf(h, " dilation=%d", d->dilation_h);
        if (conv && d->dilation_w != d->dilation_h) nn__buf_printf(h, " dilation_w=%d", d->dilation_w);
        if (conv && d->groups > 1) nn__buf_printf(h, " groups=%d", d->groups);
        if (d->no_bias) nn__buf_printf(h, " no_bias=1");
        if (spatial && !conv && d->ceil_mode) nn__buf_printf(h, " ceil_mode=1");
        if (d->kind == NN_AVGPOOL2D && d->exclude_pad) nn__buf_printf(h, " exclude_pad=1");
        if (bn && d->no_affine) nn__buf_printf(h, " no_affine=1");
        if (bn && d->momentum != 0.0f) nn__buf_printf(h, " momentum=%.9g", d->momentum);
        if (bn && d->eps != 0.0f) nn__buf_printf(h, " eps=%.9g", d->eps);
        if (d->kind == NN_HARDTANH && (d->min_val != 0.0f || d->max_val != 0.0f))
            nn__buf_printf(h, " min=%.9g max=%.9g", d->min_val, d->max_val);
        if (alpha != 0.0f) nn__buf_printf(h, " alpha=%.9g", alpha);
        if (d->kind == NN_SOFTPLUS && d->threshold != 0.0f) nn__buf_printf(h, " beta=%.9g", d->threshold);
        if (d->approximate) nn__buf_printf(h, " approximate=1");
        if (d->kind == NN_BLOCK_END && d->relu) nn__buf_printf(h, " relu=1");
        if (d->name) nn__buf_printf(h, " name=%s", d->name);   /* no character that needs escaping */
    }
    nn__buf_put(h, "\"", 1);
}

/* A checkpoint's training settings beyond the optimiser's step, each written only
   when it is not the default (so a checkpoint without them is as before):
   "param_options" lr_scale,wd_scale,no_decay,frozen per learnable parameter in order,
   "optimizer_steps" each learnable parameter's own step count, "label_smoothing". */
static void nn__ckpt_extras(nn__buf *h, const nn_net *net, const nn_optim *opt)
{
    int i, options = 0, steps = 0, first = 1;
    for (i = 0; i < net->num_params; i++) {
        const nn_param *p = &net->params[i];
        if (!p->learnable) continue;
        options |= p->options.lr_scale != 0.0f || p->options.wd_scale != 0.0f || p->options.no_decay ||
                   p->options.frozen;
        steps |= opt->steps[i] != opt->step;
    }
    if (options) {
        nn__buf_printf(h, ",\"param_options\":\"");
        for (i = 0; i < net->num_params; i++) {
            const nn_param_options *o = &net->params[i].options;
            if (!net->params[i].learnable) continue;
            nn__buf_printf(h, "%s%.9g,%.9g,%d,%d", first ? "" : ",", o->lr_scale, o->wd_scale, o->no_decay, o->frozen);
            first = 0;
        }
        nn__buf_put(h, "\"", 1);
    }
    if (steps) {
        nn__buf_printf(h, ",\"optimizer_steps\":\"");
        for (i = 0, first = 1; i < net->num_params; i++) {
            if (!net->params[i].learnable) continue;
            nn__buf_printf(h, "%s%ld", first ? "" : ",", opt->steps[i]);
            first = 0;
        }
        nn__buf_put(h, "\"", 1);
    }
    if (net->label_smoothing != 0.0f) nn__buf_printf(h, ",\"label_smoothing\":\"%.9g\"", net->label_smoothing);
}

static void nn__qsave_tensors(const nn_net *net, nn__buf *h, nn__buf *body, size_t *offset);

static nn_status nn__save(nn_net *net, const nn_optim *opt, unsigned char **out, size_t *out_size)
{
    nn__buf h, body, file;
    size_t offset = 0;
    int i, k;
    unsigned char len8[8];
    if (!net || !out || !out_size) return nn__fail(NN_ERR_ARG, "save: net, data or size is NULL");
    if (!net->built) return nn__fail(NN_ERR_STATE, "save: the net is not built");
    memset(&h, 0, sizeof h);
    memset(&body, 0, sizeof body);
    memset(&file, 0, sizeof file);
    nn__buf_printf(&h, "{\"__metadata__\":{\"format\":\"pt\",\"nn.h\":\"%d.%d.%d\",\"nn_format\":\"1\"",
                   NN_VERSION_MAJOR, NN_VERSION_MINOR, NN_VERSION_PATCH);
    nn__buf_printf(&h, ",\"input\":\"%d,%d,%d\"", net->input.c, net->input.h, net->input.w);
    nn__json_layers(&h, net);
    if (net->preprocess != NN_PREPROCESS_NONE) {
        int channels = net->preprocess == NN_PREPROCESS_CHANNELS;
        nn__buf_printf(&h, ",\"preprocess\":\"%s\",\"preprocess_scale\":\"%.9g\"",
                       channels ? "channels" : "mean_image", net->preprocess_scale);
        nn__json_floats(&h, "preprocess_mean", net->preprocess_mean,
                        channels ? (size_t)net->input.c : nn_shape_size(net->input));
        if (channels) nn__json_floats(&h, "preprocess_std", net->preprocess_std, (size_t)net->input.c);
    }
    if (net->num_class_names) {
        const char *name = net->class_names;
        nn__buf_printf(&h, ",\"classes\":\"");
        for (i = 0; i < net->num_class_names; i++, name += strlen(name) + 1) {
            if (i) nn__buf_put(&h, ",", 1);
            nn__json_escape(&h, name);
        }
        nn__buf_put(&h, "\"", 1);
    }
    if (opt) {
        nn__buf_printf(&h, ",\"optimizer\":\"%d\",\"optimizer_step\":\"%ld\",\"optimizer_lr\":\"%.9g\"",
                       (int)opt->kind, opt->step, opt->lr);
        nn__buf_printf(&h, ",\"rng\":\"%llu,%llu\"", (unsigned long long)net->rng.state,
                       (unsigned long long)net->rng.inc);
        nn__ckpt_extras(&h, net, opt);
    }
    if (net->q) nn__buf_printf(&h, ",\"quantized\":\"int8\",\"activation_max\":\"%d\"", NN__QMAX);
    nn__buf_put(&h, "}", 1);
    if (net->q) nn__qsave_tensors(net, &h, &body, &offset);   /* QUANTIZED INFERENCE */
    for (i = 0; i < net->num_params; i++) {
        const nn_param *p = &net->params[i];
        nn__json_tensor(&h, p->name, "F32", p->ndim, p->shape, &offset, p->size * sizeof(float));
        nn__buf_put_f32(&body, p->value, p->size);
        if (strlen(p->name) > 11 && !strcmp(p->name + strlen(p->name) - 11, "running_var")) {
            char name[NN_MAX_NAME + 16];
            int64_t tracked = net->train_batches;
            unsigned char le[8];
            for (k = 0; k < 8; k++) le[k] = (unsigned char)((uint64_t)tracked >> (8 * k));
            snprintf(name, sizeof name, "%.*s.num_batches_tracked", (int)(strlen(p->name) - 12), p->name);
            nn__json_tensor(&h, name, "I64", 0, NULL, &offset, 8);
            nn__buf_put(&body, le, 8);
        }
    }
    for (i = 0; opt && i < net->num_params; i++)
        for (k = 0; k < 2; k++) {
            const float *state = k ? opt->v[i] : opt->m[i];
            char name[NN_MAX_NAME + 16];
            if (!state) continue;
            snprintf(name, sizeof name, "optimizer.%c.%s", k ? 'v' : 'm', net->params[i].name);
            nn__json_tensor(&h, name, "F32", net->params[i].ndim, net->params[i].shape, &offset,
                            net->params[i].size * sizeof(float));
            nn__buf_put_f32(&body, state, net->params[i].size);
        }
    nn__buf_put(&h, "}", 1);
    while (h.len % 8) nn__buf_put(&h, " ", 1);   /* align the data to 8 bytes */
    for (k = 0; k < 8; k++) len8[k] = (unsigned char)((uint64_t)h.len >> (8 * k));
    nn__buf_put(&file, len8, 8);
    if (h.data) nn__buf_put(&file, h.data, h.len);
    if (body.data) nn__buf_put(&file, body.data, body.len);
    {
        int failed = h.failed || body.failed || file.failed;
        nn__free(h.data);
        nn__free(body.data);
        if (failed) { nn__free(file.data); return nn__fail(NN_ERR_NOMEM, "save: out of memory"); }
    }
    *out = file.data;
    *out_size = file.len;
    return NN_OK;
}

NNDEF nn_status nn_save_memory(nn_net *net, unsigned char **data, size_t *size)
{
    nn__error_clear();
    return nn__save(net, NULL, data, size);
}

NNDEF void nn_free_buffer(void *data) { nn__free(data); }

/* ---- A small JSON reader for the header ---------------------------------------------
   Bounds-checked at every byte: a damaged header gives an error, never a read past
   its end. Strict where it matters: no control characters inside strings, only JSON's
   escapes (\uXXXX becomes UTF-8, surrogate pairs joined, \u0000 refused), no key twice
   in one object. */

typedef struct { const char *p, *end; } nn__json;

static void nn__json_ws(nn__json *j) { while (j->p < j->end && strchr(" \t\r\n", *j->p) && *j->p) j->p++; }

static int nn__json_eat(nn__json *j, char c)
{
    nn__json_ws(j);
    if (j->p < j->end && *j->p == c) { j->p++; return 1; }
    return 0;
}

/* Four hex digits at p (bounded by end); -1 if malformed. */
static long nn__json_hex4(const char *p, const char *end)
{
    long v = 0;
    int k;
    if (end - p < 4) return -1;
    for (k = 0; k < 4; k++) {
        char c = p[k];
        v = v * 16 + (c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                      : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1000000);
    }
    return v < 0 ? -1 : v;
}

/* Reads a string into a new buffer; NULL on a malformed string or no memory. An
   escape never makes the text longer, so the raw length bounds the buffer. */
static char *nn__json_string(nn__json *j)
{
    const char *start, *q;
    char *out, *o;
    nn__json_ws(j);
    if (j->p >= j->end || *j->p != '"') return NULL;
    start = ++j->p;
    while (j->p < j->end && *j->p != '"') j->p += (*j->p == '\\') ? 2 : 1;
    if (j->p >= j->end) return NULL;
    if (!(out = (char *)nn__alloc((size_t)(j->p - start) + 1))) return NULL;
    for (o = out, q = start; q < j->p; q++) {
        unsigned long v;
        long lo;
        if ((unsigned char)*q < 0x20) goto bad;
        if (*q != '\\') { *o++ = *q; continue; }
        switch (*++q) {
        case '"': case '\\': case '/': *o++ = *q; continue;
        case 'n': *o++ = '\n'; continue;
        case 't': *o++ = '\t'; continue;
        case 'r': *o++ = '\r'; continue;
        case 'b': *o++ = '\b'; continue;
        case 'f': *o++ = '\f'; continue;
        case 'u': break;
        default: goto bad;
        }
        if ((lo = nn__json_hex4(q + 1, j->p)) <= 0) goto bad;
        v = (unsigned long)lo;
        q += 4;
        if (v >= 0xdc00 && v <= 0xdfff) goto bad;
        if (v >= 0xd800 && v <= 0xdbff) {   /* a high surrogate: its low half must follow */
            if (j->p - q < 7 || q[1] != '\\' || q[2] != 'u' || (lo = nn__json_hex4(q + 3, j->p)) < 0xdc00 ||
                lo > 0xdfff)
                goto bad;
            v = 0x10000 + ((v - 0xd800) << 10) + ((unsigned long)lo - 0xdc00);
            q += 6;
        }
        if (v < 0x80) *o++ = (char)v;
        else if (v < 0x800) { *o++ = (char)(0xc0 | v >> 6); *o++ = (char)(0x80 | (v & 0x3f)); }
        else if (v < 0x10000) {
            *o++ = (char)(0xe0 | v >> 12); *o++ = (char)(0x80 | (v >> 6 & 0x3f)); *o++ = (char)(0x80 | (v & 0x3f));
        } else {
            *o++ = (char)(0xf0 | v >> 18); *o++ = (char)(0x80 | (v >> 12 & 0x3f));
            *o++ = (char)(0x80 | (v >> 6 & 0x3f)); *o++ = (char)(0x80 | (v & 0x3f));
        }
    }
    *o = 0;
    j->p++;
    return out;
bad:
    nn__free(out);
    return NULL;
}

/* Reads a non-negative integer (up to 16 digits, so below 2^64). */
static int nn__json_uint(nn__json *j, uint64_t *v)
{
    int digits = 0;
    nn__json_ws(j);
    *v = 0;
    while (j->p < j->end && *j->p >= '0' && *j->p <= '9' && digits < 16) {
        *v = *v * 10 + (uint64_t)(*j->p++ - '0');
        digits++;
    }
    return digits > 0 && !(j->p < j->end && *j->p >= '0' && *j->p <= '9');
}

static int nn__strcmp_ptr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* 1 if the n strings (sorted here, in place) are all different; else *dup is one of
   the repeated ones. */
static int nn__unique(char **keys, int n, size_t stride, const char **dup)
{
    int i;
    if (n > 1) qsort(keys, (size_t)n, stride, nn__strcmp_ptr);
    for (i = 1; i < n; i++) {
        const char *a = *(char **)((char *)keys + (size_t)(i - 1) * stride);
        const char *b = *(char **)((char *)keys + (size_t)i * stride);
        if (!strcmp(a, b)) { *dup = b; return 0; }
    }
    return 1;
}

/* Skips any value (for keys we do not know), nesting at most 32 deep; an object's
   keys must be different. */
static int nn__json_skip(nn__json *j, int depth)
{
    nn__json_ws(j);
    if (j->p >= j->end || depth > 32) return 0;
    if (*j->p == '"') { char *s = nn__json_string(j); nn__free(s); return s != NULL; }
    if (*j->p == '{' || *j->p == '[') {
        char close = *j->p == '{' ? '}' : ']', **keys = NULL;
        int ok = 1, n = 0, cap = 0, k;
        const char *dup;
        j->p++;
        if (nn__json_eat(j, close)) return 1;
        do {
            if (close == '}') {
                char *key = nn__json_string(j);
                if (n == cap) {
                    char **grown = (char **)nn__alloc((size_t)(cap = cap ? 2 * cap : 8) * sizeof *grown);
                    if (grown && n) memcpy(grown, keys, (size_t)n * sizeof *grown);
                    nn__free(keys);
                    keys = grown;
                }
                if (!keys || !key) { nn__free(key); ok = 0; break; }
                keys[n++] = key;
                if (!nn__json_eat(j, ':')) { ok = 0; break; }
            }
            if (!nn__json_skip(j, depth + 1)) { ok = 0; break; }
        } while (nn__json_eat(j, ','));
        ok = ok && nn__json_eat(j, close) && nn__unique(keys, n, sizeof *keys, &dup);
        for (k = 0; k < n; k++) nn__free(keys[k]);
        nn__free(keys);
        return ok;
    }
    {
        const char *start = j->p;
        while (j->p < j->end && (strchr("+-.eE", *j->p) || (*j->p >= '0' && *j->p <= '9') ||
                                 (*j->p >= 'a' && *j->p <= 'z')) && *j->p)
            j->p++;
        return j->p > start;
    }
}

/* One tensor entry of the header. */
typedef struct {
    char    *name;
    char     dtype[8];
    int      ndim;
    uint64_t shape[NN_MAX_DIMS];
    uint64_t begin, end;
    int      used;                /* matched by the loader */
} nn__st_tensor;

typedef struct {
    nn__st_tensor *tensors;       /* sorted by name */
    int            num_tensors;
    char         **meta;          /* key, value, key, value, ... sorted by key */
    int            num_meta;
    const unsigned char *data;    /* the byte buffer after the header */
    uint64_t       data_size;
} nn__st_file;

static void nn__st_free(nn__st_file *f)
{
    int i;
    for (i = 0; i < f->num_tensors; i++) nn__free(f->tensors[i].name);
    for (i = 0; i < 2 * f->num_meta; i++) nn__free(f->meta[i]);
    nn__free(f->tensors);
    nn__free(f->meta);
    memset(f, 0, sizeof *f);
}

static const char *nn__st_meta(const nn__st_file *f, const char *key)
{
    int lo = 0, hi = f->num_meta - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2, c = strcmp(f->meta[2 * mid], key);
        if (!c) return f->meta[2 * mid + 1];
        if (c < 0) lo = mid + 1; else hi = mid - 1;
    }
    return NULL;
}

static nn_status nn__st_tensor_entry(nn__json *j, nn__st_tensor *t)
{
    int have_dtype = 0, have_shape = 0, have_offsets = 0, n = 0, k;
    char *others[8];   /* keys we skip, checked for repeats; more of them is malformed */
    const char *dup;
    nn_status st = NN_ERR_FORMAT;
    if (!nn__json_eat(j, '{')) return NN_ERR_FORMAT;
    if (nn__json_eat(j, '}')) return NN_ERR_FORMAT;
    do {
        char *key = nn__json_string(j);
        int ok = key && nn__json_eat(j, ':');
        if (ok && !strcmp(key, "dtype")) {
            char *v = nn__json_string(j);
            ok = !have_dtype && v && strlen(v) < sizeof t->dtype;
            if (ok) strcpy(t->dtype, v);
            nn__free(v);
            have_dtype = 1;
        } else if (ok && !strcmp(key, "shape")) {
            ok = !have_shape && nn__json_eat(j, '[');
            t->ndim = 0;
            if (ok && !nn__json_eat(j, ']')) {
                do ok = t->ndim < NN_MAX_DIMS && nn__json_uint(j, &t->shape[t->ndim++]);
                while (ok && nn__json_eat(j, ','));
                ok = ok && nn__json_eat(j, ']');
            }
            have_shape = 1;
        } else if (ok && !strcmp(key, "data_offsets")) {
            ok = !have_offsets && nn__json_eat(j, '[') && nn__json_uint(j, &t->begin) && nn__json_eat(j, ',') &&
                 nn__json_uint(j, &t->end) && nn__json_eat(j, ']');
            have_offsets = 1;
        } else if (ok && n < 8) {
            ok = nn__json_skip(j, 0);
            others[n++] = key;
            key = NULL;
        } else ok = 0;
        nn__free(key);
        if (!ok) goto done;
    } while (nn__json_eat(j, ','));
    if (nn__json_eat(j, '}') && have_dtype && have_shape && have_offsets &&
        nn__unique(others, n, sizeof *others, &dup))
        st = NN_OK;
done:
    for (k = 0; k < n; k++) nn__free(others[k]);
    return st;
}

static int nn__st_cmp_begin(const void *a, const void *b)
{
    const nn__st_tensor *x = (const nn__st_tensor *)a, *y = (const nn__st_tensor *)b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : x->end < y->end ? -1 : x->end > y->end;
}

/* Every tensor's bytes within the data, the tensors tiling it without overlaps, gaps or
   trailing bytes (as the format requires); no name or metadata key twice; a known
   nn_format version. The tensors end up sorted by name, the metadata by key. */
static nn_status nn__st_validate(nn__st_file *f)
{
    uint64_t at = 0;
    const char *dup;
    const char *version = NULL;
    int k;
    if (f->num_tensors > 1) qsort(f->tensors, (size_t)f->num_tensors, sizeof *f->tensors, nn__st_cmp_begin);
    for (k = 0; k < f->num_tensors; k++) {
        const nn__st_tensor *t = &f->tensors[k];
        if (t->begin > t->end || t->end > f->data_size)
            return nn__fail(NN_ERR_FORMAT, "model: tensor '%s' spans bytes %llu..%llu of a %llu-byte data section",
                            t->name, (unsigned long long)t->begin, (unsigned long long)t->end,
                            (unsigned long long)f->data_size);
        if (t->begin != at)
            return nn__fail(NN_ERR_FORMAT, "model: tensor '%s' starts at byte %llu, expected %llu (%s)", t->name,
                            (unsigned long long)t->begin, (unsigned long long)at,
                            t->begin < at ? "it overlaps another tensor" : "a gap in the data");
        at = t->end;
    }
    if (at != f->data_size)
        return nn__fail(NN_ERR_FORMAT, "model: %llu bytes after the last tensor", (unsigned long long)(f->data_size - at));
    if (f->num_tensors > 1 && !nn__unique(&f->tensors[0].name, f->num_tensors, sizeof *f->tensors, &dup))
        return nn__fail(NN_ERR_FORMAT, "model: tensor '%s' appears twice", dup);
    if (!nn__unique(f->meta, f->num_meta, 2 * sizeof *f->meta, &dup))
        return nn__fail(NN_ERR_FORMAT, "model: metadata key '%s' appears twice", dup);
    if ((version = nn__st_meta(f, "nn_format")) && strcmp(version, "1"))
        return nn__fail(NN_ERR_FORMAT, "model: nn_format version '%s'; this nn.h (%d.%d.%d) reads version 1",
                        version, NN_VERSION_MAJOR, NN_VERSION_MINOR, NN_VERSION_PATCH);
    return NN_OK;
}

/* Parses the 8-byte length and the JSON header; validates it (nn__st_validate). */
static nn_status nn__st_parse(const void *data, size_t size, nn__st_file *f)
{
    const unsigned char *bytes = (const unsigned char *)data;
    uint64_t header_len = 0;
    nn__json j;
    int k, cap_t = 0, cap_m = 0, have_meta = 0;
    nn_status st;
    memset(f, 0, sizeof *f);
    if (!data || size < 8) return nn__fail(NN_ERR_FORMAT, "model: %zu bytes, too short for a safetensors file", size);
    for (k = 7; k >= 0; k--) header_len = header_len << 8 | bytes[k];
    if (header_len < 2 || header_len > size - 8)
        return nn__fail(NN_ERR_FORMAT, "model: header length %llu does not fit in a file of %zu bytes",
                        (unsigned long long)header_len, size);
    j.p = (const char *)bytes + 8;
    j.end = j.p + header_len;
    f->data = bytes + 8 + header_len;
    f->data_size = size - 8 - header_len;
    if (!nn__json_eat(&j, '{')) goto bad;
    if (nn__json_eat(&j, '}')) goto done;
    do {
        char *key = nn__json_string(&j);
        if (!key || !nn__json_eat(&j, ':')) { nn__free(key); goto bad; }
        if (!strcmp(key, "__metadata__")) {
            nn__free(key);
            if (have_meta++) {
                nn__st_free(f);
                return nn__fail(NN_ERR_FORMAT, "model: the header has two __metadata__ objects");
            }
            if (!nn__json_eat(&j, '{')) goto bad;
            if (nn__json_eat(&j, '}')) continue;
            do {
                char *mk = nn__json_string(&j), *mv = NULL;
                if (mk && nn__json_eat(&j, ':')) mv = nn__json_string(&j);
                if (!mv) { nn__free(mk); goto bad; }
                if (f->num_meta == cap_m) {
                    int cap = cap_m ? 2 * cap_m : 16;
                    char **grown = (char **)nn__calloc((size_t)cap * 2, sizeof(char *));
                    if (!grown) { nn__free(mk); nn__free(mv); nn__st_free(f); return nn__fail(NN_ERR_NOMEM, "model: out of memory"); }
                    if (f->num_meta) memcpy(grown, f->meta, (size_t)f->num_meta * 2 * sizeof(char *));
                    nn__free(f->meta);
                    f->meta = grown;
                    cap_m = cap;
                }
                f->meta[2 * f->num_meta] = mk;
                f->meta[2 * f->num_meta + 1] = mv;
                f->num_meta++;
            } while (nn__json_eat(&j, ','));
            if (!nn__json_eat(&j, '}')) goto bad;
            continue;
        }
        if (f->num_tensors == cap_t) {
            int cap = cap_t ? 2 * cap_t : 32;
            nn__st_tensor *grown = (nn__st_tensor *)nn__calloc((size_t)cap, sizeof *grown);
            if (!grown) { nn__free(key); nn__st_free(f); return nn__fail(NN_ERR_NOMEM, "model: out of memory"); }
            if (f->num_tensors) memcpy(grown, f->tensors, (size_t)f->num_tensors * sizeof *grown);
            nn__free(f->tensors);
            f->tensors = grown;
            cap_t = cap;
        }
        f->tensors[f->num_tensors].name = key;
        if (nn__st_tensor_entry(&j, &f->tensors[f->num_tensors++]) != NN_OK) {
            st = nn__fail(NN_ERR_FORMAT, "model: the header entry of tensor '%s' is malformed", key);
            nn__st_free(f);
            return st;
        }
    } while (nn__json_eat(&j, ','));
    if (!nn__json_eat(&j, '}')) goto bad;
done:
    nn__json_ws(&j);
    if (j.p != j.end) goto bad;
    if ((st = nn__st_validate(f)) != NN_OK) nn__st_free(f);
    return st;
bad:
    {
        long at = (long)(j.p - ((const char *)bytes + 8));
        nn__st_free(f);
        return nn__fail(NN_ERR_FORMAT, "model: the JSON header is malformed near byte %ld of %llu",
                        at, (unsigned long long)header_len);
    }
}

static nn__st_tensor *nn__st_find(nn__st_file *f, const char *name)
{
    int lo = 0, hi = f->num_tensors - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2, c = strcmp(f->tensors[mid].name, name);
        if (!c) return &f->tensors[mid];
        if (c < 0) lo = mid + 1; else hi = mid - 1;
    }
    return NULL;
}

static float nn__le_f32(const unsigned char *b)
{
    uint32_t u = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    float v;
    memcpy(&v, &u, 4);
    return v;
}

/* Checks tensor `name`: present, F32, of the given shape and byte count, every value
   finite; marks it used. Copies nothing. */
static nn_status nn__st_check_f32(nn__st_file *f, const char *name, int ndim, const int *shape, size_t count)
{
    nn__st_tensor *t = nn__st_find(f, name);
    size_t i;
    int d;
    if (!t) return nn__fail(NN_ERR_FORMAT, "model: tensor '%s' is missing", name);
    if (strcmp(t->dtype, "F32"))
        return nn__fail(NN_ERR_FORMAT, "model: tensor '%s' has dtype %s, expected F32", name, t->dtype);
    if (t->ndim != ndim) goto shape_error;
    for (d = 0; d < ndim; d++) if (t->shape[d] != (uint64_t)shape[d]) goto shape_error;
    if (t->end - t->begin != (uint64_t)count * 4)
        return nn__fail(NN_ERR_FORMAT, "model: tensor '%s' holds %llu bytes, expected %zu", name,
                        (unsigned long long)(t->end - t->begin), count * 4);
    for (i = 0; i < count; i++)
        if (!isfinite(nn__le_f32(f->data + t->begin + 4 * i)))
            return nn__fail(NN_ERR_FORMAT, "model: tensor '%s' holds %g at index %zu", name,
                            (double)nn__le_f32(f->data + t->begin + 4 * i), i);
    t->used = 1;
    return NN_OK;
shape_error:
    {
        char want[64] = "", got[64] = "";
        for (d = 0; d < ndim; d++) snprintf(want + strlen(want), sizeof want - strlen(want), "%s%d", d ? "x" : "", shape[d]);
        for (d = 0; d < t->ndim; d++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%llu", d ? "x" : "", (unsigned long long)t->shape[d]);
        return nn__fail(NN_ERR_FORMAT, "model: tensor '%s' has shape [%s], expected [%s]", name, got, want);
    }
}

/* Copies a tensor that nn__st_check_f32 accepted. */
static void nn__st_copy_f32(nn__st_file *f, const char *name, float *dst, size_t count)
{
    const unsigned char *src = f->data + nn__st_find(f, name)->begin;
    size_t i;
    if (nn__little_endian()) memcpy(dst, src, count * 4);
    else for (i = 0; i < count; i++) dst[i] = nn__le_f32(src + 4 * i);
}

/* The name of an optimiser moment (k = 0: m, 1: v) of parameter i. */
static void nn__moment_name(char *name, size_t size, int k, const char *param)
{
    snprintf(name, size, "optimizer.%c.%s", k ? 'v' : 'm', param);
}

/* Checks every tensor the net (and the optimiser, if any) will take from the file, and
   that the file holds nothing else; *tracked gets the first BatchNorm's
   num_batches_tracked (-1 if none). Nothing of the net is touched. */
static nn_status nn__st_check(nn_net *net, const nn_optim *opt, nn__st_file *f, long *tracked)
{
    nn_status st;
    int i, k;
    *tracked = -1;
    for (i = 0; i < f->num_tensors; i++) f->tensors[i].used = 0;
    for (i = 0; i < net->num_params; i++) {
        const nn_param *p = &net->params[i];
        size_t len = strlen(p->name);
        if ((st = nn__st_check_f32(f, p->name, p->ndim, p->shape, p->size)) != NN_OK) return st;
        for (k = 0; opt && k < 2; k++) {
            char name[NN_MAX_NAME + 16];
            if (!(k ? opt->v[i] : opt->m[i])) continue;
            nn__moment_name(name, sizeof name, k, p->name);
            if ((st = nn__st_check_f32(f, name, p->ndim, p->shape, p->size)) != NN_OK) return st;
        }
        if (len > 11 && !strcmp(p->name + len - 11, "running_var")) {   /* PyTorch's counter */
            char name[NN_MAX_NAME + 16];
            nn__st_tensor *t;
            int64_t v = 0;
            snprintf(name, sizeof name, "%.*s.num_batches_tracked", (int)(len - 12), p->name);
            if (!(t = nn__st_find(f, name))) continue;
            if (strcmp(t->dtype, "I64") || t->ndim != 0 || t->end - t->begin != 8)
                return nn__fail(NN_ERR_FORMAT, "model: tensor '%s' is not an I64 scalar", name);
            for (k = 7; k >= 0; k--) v = (int64_t)((uint64_t)v << 8 | f->data[t->begin + (unsigned)k]);
            if (v < 0 || v > LONG_MAX)
                return nn__fail(NN_ERR_FORMAT, "model: tensor '%s' holds %lld", name, (long long)v);
            if (*tracked < 0) *tracked = (long)v;
            t->used = 1;
        }
    }
    for (i = 0; i < f->num_tensors; i++)
        if (!f->tensors[i].used)
            return nn__fail(NN_ERR_FORMAT, "model: tensor '%s' does not belong to this net%s", f->tensors[i].name,
                            !strncmp(f->tensors[i].name, "optimizer.", 10) && !opt
                                ? " (optimiser state: load the file with nn_load_checkpoint)" : "");
    return NN_OK;
}

/* Copies what nn__st_check accepted into the net and the optimiser. */
static void nn__st_copy(nn_net *net, nn_optim *opt, nn__st_file *f, long tracked)
{
    int i, k;
    for (i = 0; i < net->num_params; i++) {
        nn_param *p = &net->params[i];
        nn__st_copy_f32(f, p->name, p->value, p->size);
        for (k = 0; opt && k < 2; k++) {
            char name[NN_MAX_NAME + 16];
            float *state = k ? opt->v[i] : opt->m[i];
            if (!state) continue;
            nn__moment_name(name, sizeof name, k, p->name);
            nn__st_copy_f32(f, name, state, p->size);
        }
    }
    if (tracked >= 0) net->train_batches = tracked;
}

/* ---- Strict numbers in the metadata ------------------------------------------------ */

/* An unsigned decimal that is exactly text[0..len): digits only, at most max. */
static int nn__parse_uint(const char *text, size_t len, uint64_t max, uint64_t *out)
{
    size_t i;
    uint64_t v = 0;
    if (!len) return 0;
    for (i = 0; i < len; i++) {
        if (text[i] < '0' || text[i] > '9' || v > (UINT64_MAX - (unsigned)(text[i] - '0')) / 10) return 0;
        v = v * 10 + (unsigned)(text[i] - '0');
    }
    *out = v;
    return v <= max;
}

/* A finite float at *text (no leading space); advances *text past it. The caller
   checks the character that follows. */
static int nn__parse_float(const char **text, float *out)
{
    char *end;
    if (!**text || strchr(" \t\n\r\f\v", **text)) return 0;
    *out = strtof(*text, &end);
    if (end == *text || !isfinite(*out)) return 0;
    *text = end;
    return 1;
}

/* Parses "v0,v1,..." into exactly n finite floats. */
static nn_status nn__parse_floats(const char *text, float *out, size_t n, const char *what)
{
    size_t i;
    for (i = 0; i < n; i++) {
        if (!nn__parse_float(&text, &out[i]) || *text != (i + 1 < n ? ',' : '\0'))
            return nn__fail(NN_ERR_FORMAT, "model: %s holds fewer or more than %zu finite numbers", what, n);
        text += i + 1 < n;
    }
    return NN_OK;
}

/* The number of comma-separated items of a non-empty text. */
static size_t nn__count_items(const char *text)
{
    size_t n = 1;
    for (; *text; text++) n += *text == ',';
    return n;
}

/* Splits off the next token of text ending at one of seps; returns its length. */
static size_t nn__token(const char **text, const char *seps, const char **token)
{
    size_t len;
    while (**text && strchr(seps, **text)) (*text)++;
    *token = *text;
    len = strcspn(*text, seps);
    *text += len;
    return len;
}

/* Parses "Linear out=100" etc. back into a layer description: each option at most
   once, integers as exact decimals, floats finite, the newer options only on the kinds
   that have them. "kernel", "stride", "pad" and "dilation" set both axes; their "_w"
   keys then set the width's. A name goes into the caller's name buffer. */
static nn_status nn__parse_layer(const char *text, size_t len, nn_layer_desc *d, char name[NN_MAX_NAME])
{
    enum { INT, FLAG, FLOAT };
    enum { ANY = 0, CONV = 1 << NN_CONV2D, POOL = 1 << NN_MAXPOOL2D | 1 << NN_AVGPOOL2D,
           AVG = 1 << NN_AVGPOOL2D, BN = 1 << NN_BATCHNORM, HT = 1 << NN_HARDTANH, END = 1 << NN_BLOCK_END };
    static const struct { const char *key; int type, kinds; } keys[] = {
        {"out", INT, ANY}, {"kernel", INT, ANY}, {"stride", INT, ANY}, {"pad", INT, ANY},
        {"no_bias", FLAG, ANY}, {"approximate", FLAG, ANY}, {"alpha", FLOAT, ANY}, {"beta", FLOAT, ANY},
        {"kernel_w", INT, CONV | POOL}, {"stride_w", INT, CONV | POOL}, {"pad_w", INT, CONV | POOL},
        {"dilation", INT, CONV}, {"dilation_w", INT, CONV}, {"groups", INT, CONV},
        {"ceil_mode", FLAG, POOL}, {"exclude_pad", FLAG, AVG}, {"no_affine", FLAG, BN},
        {"momentum", FLOAT, BN}, {"eps", FLOAT, BN}, {"min", FLOAT, HT}, {"max", FLOAT, HT},
        {"relu", FLAG, END}, {"name", -1, ANY}
    };
    enum { NKEYS = sizeof keys / sizeof keys[0] };
    static const char *const expected[3] = { "an integer 0..INT_MAX", "0 or 1", "a finite number" };
    char buf[320];
    const char *cursor = buf, *tok;
    size_t n;
    int kind, seen = 0, w[4] = {0, 0, 0, 0};   /* the _w values, applied last */
    if (len >= sizeof buf) return nn__fail(NN_ERR_FORMAT, "model: a layer description is too long");
    memcpy(buf, text, len);
    buf[len] = 0;
    memset(d, 0, sizeof *d);
    n = nn__token(&cursor, " ", &tok);
    for (kind = 1; kind < NN_LAYER_KIND_COUNT; kind++) {
        const char *name = nn_layer_name((nn_layer_kind)kind);
        if (strlen(name) == n && !strncmp(tok, name, n)) break;
    }
    if (kind == NN_LAYER_KIND_COUNT) return nn__fail(NN_ERR_FORMAT, "model: unknown layer '%.*s'", (int)n, tok);
    d->kind = (nn_layer_kind)kind;
    while ((n = nn__token(&cursor, " ", &tok)) > 0) {
        const char *eq = (const char *)memchr(tok, '=', n), *value;
        size_t key_len = eq ? (size_t)(eq - tok) : n;
        int k, ok, type, v;
        uint64_t u = 0;
        float f = 0.0f;
        for (k = 0; k < NKEYS && !(strlen(keys[k].key) == key_len && !strncmp(tok, keys[k].key, key_len)); k++) {}
        if (!eq || k == NKEYS) return nn__fail(NN_ERR_FORMAT, "model: unknown layer option '%.*s'", (int)n, tok);
        if (keys[k].kinds && !(keys[k].kinds & 1 << kind))
            return nn__fail(NN_ERR_FORMAT, "model: option '%s' on a %s layer", keys[k].key, nn_layer_name(d->kind));
        if (seen & 1 << k) return nn__fail(NN_ERR_FORMAT, "model: layer option '%s' appears twice", keys[k].key);
        seen |= 1 << k;
        value = eq + 1;
        type = keys[k].type;
        if (type < 0) {   /* the name: nn_add checks it */
            if (n - key_len - 1 >= NN_MAX_NAME) return nn__fail(NN_ERR_FORMAT, "model: a layer name is too long");
            memcpy(name, value, n - key_len - 1);
            name[n - key_len - 1] = 0;
            d->name = name;
            continue;
        }
        ok = type != FLOAT ? nn__parse_uint(value, n - key_len - 1, type == INT ? INT_MAX : 1, &u)
                           : nn__parse_float(&value, &f) && value == tok + n;
        if (!ok) return nn__fail(NN_ERR_FORMAT, "model: bad value in '%.*s' (expected %s)", (int)n, tok, expected[type]);
        v = (int)u;
        switch (k) {
        case 0: d->out = v; break;
        case 1: d->kernel_h = d->kernel_w = v; break;
        case 2: d->stride_h = d->stride_w = v; break;
        case 3: d->pad_h = d->pad_w = v; break;
        case 4: d->no_bias = v; break;
        case 5: d->approximate = v; break;
        case 6:   /* one key for the one float option of each of these kinds */
            if (d->kind == NN_LEAKY_RELU) d->negative_slope = f;
            else if (d->kind == NN_SCALE) d->factor = f;
            else if (d->kind == NN_DROPOUT) d->p = f;
            else if (d->kind == NN_SOFTPLUS) d->beta = f;
            else return nn__fail(NN_ERR_FORMAT, "model: option 'alpha' on a %s layer", nn_layer_name(d->kind));
            break;
        case 7:
            if (d->kind != NN_SOFTPLUS)
                return nn__fail(NN_ERR_FORMAT, "model: option 'beta' on a %s layer", nn_layer_name(d->kind));
            d->threshold = f;
            break;
        case 8: case 9: case 10: w[k - 8] = v; break;
        case 11: d->dilation_h = d->dilation_w = v; break;
        case 12: w[3] = v; break;
        case 13: d->groups = v; break;
        case 14: d->ceil_mode = v; break;
        case 15: d->exclude_pad = v; break;
        case 16: d->no_affine = v; break;
        case 17: d->momentum = f; break;
        case 18: d->eps = f; break;
        case 19: d->min_val = f; break;
        case 20: d->max_val = f; break;
        default: d->relu = v; break;
        }
    }
    if (seen & 1 << 8) d->kernel_w = w[0];
    if (seen & 1 << 9) d->stride_w = w[1];
    if (seen & 1 << 10) d->pad_w = w[2];
    if (seen & 1 << 12) d->dilation_w = w[3];
    return NN_OK;
}

/* The preprocessing and class names of a file, parsed and checked before the net is
   built (the outputs are known once its shapes are planned). */
typedef struct {
    nn_preprocess_kind preprocess;
    float  scale, *mean, *std;
    char  *classes;          /* a copy of the list, split at the commas in place */
    const char **names;
    int    num_names;
} nn__st_extras;

static void nn__extras_free(nn__st_extras *e)
{
    nn__free(e->mean);
    nn__free(e->std);
    nn__free(e->classes);
    nn__free((void *)e->names);
    memset(e, 0, sizeof *e);
}

static nn_status nn__st_extras_parse(const nn_net *net, const nn__st_file *f, nn__st_extras *e)
{
    const char *pre = nn__st_meta(f, "preprocess"), *classes = nn__st_meta(f, "classes");
    nn_status st;
    memset(e, 0, sizeof *e);
    e->scale = 1.0f;
    if (pre && strcmp(pre, "none")) {
        int channels = !strcmp(pre, "channels"), c;
        size_t n = channels ? (size_t)net->input.c : nn_shape_size(net->input);
        const char *mean = nn__st_meta(f, "preprocess_mean"), *std = nn__st_meta(f, "preprocess_std");
        const char *scale = nn__st_meta(f, "preprocess_scale");
        if (!channels && strcmp(pre, "mean_image")) return nn__fail(NN_ERR_FORMAT, "model: unknown preprocessing '%s'", pre);
        if (!mean || (channels && !std)) return nn__fail(NN_ERR_FORMAT, "model: preprocessing values are missing");
        /* Counted before anything is allocated: a short file cannot ask for a large array. */
        if (nn__count_items(mean) != n || (channels && nn__count_items(std) != n))
            return nn__fail(NN_ERR_FORMAT, "model: the preprocessing holds %zu values, expected %zu",
                            nn__count_items(channels && nn__count_items(mean) == n ? std : mean), n);
        if (scale && (!nn__parse_float(&scale, &e->scale) || *scale || e->scale == 0.0f ||
                      (!channels && e->scale != 1.0f)))
            return nn__fail(NN_ERR_FORMAT, "model: bad preprocess_scale '%s'", nn__st_meta(f, "preprocess_scale"));
        if (!(e->mean = (float *)nn__alloc(n * sizeof(float))) ||
            (channels && !(e->std = (float *)nn__alloc(n * sizeof(float)))))
            return nn__fail(NN_ERR_NOMEM, "model: out of memory");
        if ((st = nn__parse_floats(mean, e->mean, n, "preprocess_mean")) != NN_OK ||
            (channels && (st = nn__parse_floats(std, e->std, n, "preprocess_std")) != NN_OK))
            return st;
        for (c = 0; channels && c < net->input.c; c++)
            if (!(e->std[c] > 0.0f)) return nn__fail(NN_ERR_FORMAT, "model: preprocess_std[%d] = %g, expected > 0", c, e->std[c]);
        e->preprocess = channels ? NN_PREPROCESS_CHANNELS : NN_PREPROCESS_MEAN_IMAGE;
    }
    if (classes) {
        size_t count = nn__count_items(classes), outputs = nn_shape_size(nn__net_output(net));
        char *p;
        int i;
        if (count != outputs) return nn__fail(NN_ERR_FORMAT, "model: %zu class names for %zu outputs", count, outputs);
        if (!(e->classes = (char *)nn__alloc(strlen(classes) + 1)) ||
            !(e->names = (const char **)nn__alloc(count * sizeof *e->names)))
            return nn__fail(NN_ERR_NOMEM, "model: out of memory");
        strcpy(e->classes, classes);
        for (p = e->classes, i = 0; i < (int)count; i++) {
            e->names[i] = p;
            p += strcspn(p, ",");
            if (*p) *p++ = 0;
            if (nn__class_name_check(e->names[i], i) != NN_OK)
                return nn__prefix_error("model", NN_ERR_FORMAT);
        }
        e->num_names = (int)count;
    }
    return NN_OK;
}

static nn_status nn__st_extras_apply(nn_net *net, const nn__st_extras *e)
{
    nn_status st = NN_OK;
    if (e->preprocess == NN_PREPROCESS_MEAN_IMAGE) st = nn_set_preprocess_mean_image(net, e->mean);
    if (e->preprocess == NN_PREPROCESS_CHANNELS) st = nn_set_preprocess_channels(net, e->scale, e->mean, e->std);
    if (st == NN_OK && e->num_names) st = nn_set_class_names(net, e->names, e->num_names);
    return nn__prefix_error("model", st);
}

/* Everything in the file is checked against the planned net (shapes, every tensor,
   the memory the buffers will take, the preprocessing and class names) before the
   net is built, so that a file cannot make it allocate more than the data it holds
   plus NN_MAX_BUILD_BYTES, nor spend time initialising weights it does not have. */
static nn_status nn__qload(nn_net *net, nn__st_file *f, int max_batch);   /* QUANTIZED INFERENCE */

NNDEF nn_net *nn_load_memory(const void *data, size_t size, int max_batch)
{
    nn__error_clear();
    nn__st_file f;
    nn__st_extras e;
    nn_net *net = NULL;
    const char *input, *layers, *p;
    uint64_t dims[3];
    size_t bytes;
    long tracked;
    int k;
    memset(&e, 0, sizeof e);
    if (max_batch <= 0) {
        nn__fail(NN_ERR_ARG, "nn_load_memory: batch size %d, expected > 0", max_batch);
        return NULL;
    }
    if (nn__st_parse(data, size, &f) != NN_OK) return NULL;
    input = nn__st_meta(&f, "input");
    layers = nn__st_meta(&f, "layers");
    if (!input || !layers) {
        nn__fail(NN_ERR_FORMAT, "model: no nn.h architecture in the metadata; build the net "
                 "yourself and use nn_load_weights");
        goto fail;
    }
    for (p = input, k = 0; k < 3; k++) {
        size_t len = strcspn(p, ",");
        if (!nn__parse_uint(p, len, INT_MAX, &dims[k]) || !dims[k] || p[len] != (k < 2 ? ',' : '\0')) {
            nn__fail(NN_ERR_FORMAT, "model: bad input shape '%s' (expected c,h,w, each 1..INT_MAX)", input);
            goto fail;
        }
        p += len + 1;
    }
    if (!(net = nn_net_new(nn_shape3((int)dims[0], (int)dims[1], (int)dims[2])))) goto fail;
    while (*layers) {
        size_t len = strcspn(layers, ";");
        nn_layer_desc d;
        char name[NN_MAX_NAME];
        if (nn__parse_layer(layers, len, &d, name) != NN_OK || nn__prefix_error("model", nn_add(net, d)) != NN_OK)
            goto fail;
        layers += len + (layers[len] == ';');
    }
    if (nn__prefix_error("model", nn__net_plan(net, max_batch, &bytes)) != NN_OK) goto fail;
    if (nn__st_meta(&f, "quantized")) {   /* an int8 net: QUANTIZED INFERENCE reads it */
        if (nn__qload(net, &f, max_batch) != NN_OK || nn__st_extras_parse(net, &f, &e) != NN_OK ||
            nn__st_extras_apply(net, &e) != NN_OK)
            goto fail;
        nn__extras_free(&e);
        nn__st_free(&f);
        return net;
    }
    if (bytes > (size_t)NN_MAX_BUILD_BYTES) {
        nn__fail(NN_ERR_NOMEM, "model: the buffers for batches of %d would take %zu bytes, more than "
                 "NN_MAX_BUILD_BYTES (%zu)", max_batch, bytes, (size_t)NN_MAX_BUILD_BYTES);
        goto fail;
    }
    if (nn__st_check(net, NULL, &f, &tracked) != NN_OK || nn__st_extras_parse(net, &f, &e) != NN_OK ||
        nn__prefix_error("model", nn_build(net, max_batch, 0)) != NN_OK)
        goto fail;
    nn__st_copy(net, NULL, &f, tracked);
    if (nn__st_extras_apply(net, &e) != NN_OK) goto fail;
    nn__extras_free(&e);
    nn__st_free(&f);
    net->training = 0;
    return net;
fail:
    nn_net_free(net);
    nn__extras_free(&e);
    nn__st_free(&f);
    return NULL;
}

/* All or nothing: every tensor is checked before the first is copied. */
NNDEF nn_status nn_load_weights_memory(nn_net *net, const void *data, size_t size)
{
    nn__error_clear();
    nn__st_file f;
    nn_status st;
    long tracked;
    if (!net || !data) return nn__fail(NN_ERR_ARG, "nn_load_weights: net or data is NULL");
    if (!net->built) return nn__fail(NN_ERR_STATE, "nn_load_weights: build the net first");
    if ((st = nn__st_parse(data, size, &f)) != NN_OK) return st;
    if ((st = nn__st_check(net, NULL, &f, &tracked)) == NN_OK) nn__st_copy(net, NULL, &f, tracked);
    nn__st_free(&f);
    return st;
}

/* All or nothing, as nn_load_weights_memory: the step, learning rate and random state
   are parsed and checked, every tensor of the net and the optimiser too, before
   anything is copied. */
/* Reads what nn__ckpt_extras wrote into o and steps (per parameter, learnable ones
   only) and *eps; an absent key is the default (no options, every step count the
   optimiser's, no smoothing). Nothing of the net is touched. */
static nn_status nn__ckpt_read_extras(nn__st_file *f, const nn_net *net, long step, nn_param_options *o,
                                      long *steps, float *eps)
{
    const char *opts = nn__st_meta(f, "param_options"), *st = nn__st_meta(f, "optimizer_steps");
    const char *ls = nn__st_meta(f, "label_smoothing");
    int i;
    *eps = 0.0f;
    for (i = 0; i < net->num_params; i++) {
        memset(&o[i], 0, sizeof o[i]);
        steps[i] = step;
    }
    for (i = 0; i < net->num_params; i++) {
        float v[4];
        const char *end;
        uint64_t k;
        if (!net->params[i].learnable) continue;
        if (opts) {
            int j;
            for (j = 0; j < 4; j++) {
                if (!nn__parse_float(&opts, &v[j]) || !(v[j] >= 0.0f) ||
                    (j >= 2 && v[j] != 0.0f && v[j] != 1.0f))
                    return nn__fail(NN_ERR_FORMAT, "checkpoint: param_options of %s: expected scales >= 0 "
                                    "and flags 0 or 1", net->params[i].name);
                if (*opts == ',') opts++;
                else if (*opts || j < 3) return nn__fail(NN_ERR_FORMAT, "checkpoint: param_options is too short");
            }
            o[i].lr_scale = v[0];
            o[i].wd_scale = v[1];
            o[i].no_decay = (int)v[2];
            o[i].frozen = (int)v[3];
        }
        if (st) {
            for (end = st; *end >= '0' && *end <= '9'; end++) {}
            if (!nn__parse_uint(st, (size_t)(end - st), LONG_MAX, &k) || (*end != ',' && *end))
                return nn__fail(NN_ERR_FORMAT, "checkpoint: optimizer_steps: expected integers >= 0");
            steps[i] = (long)k;
            st = *end ? end + 1 : end;
        }
    }
    if ((opts && *opts) || (st && *st))
        return nn__fail(NN_ERR_FORMAT, "checkpoint: %s holds more values than the net has parameters",
                        opts && *opts ? "param_options" : "optimizer_steps");
    if (ls && (!nn__parse_float(&ls, eps) || *ls || !(*eps >= 0.0f && *eps <= 1.0f)))
        return nn__fail(NN_ERR_FORMAT, "checkpoint: label_smoothing: expected a number in 0..1");
    return NN_OK;
}

/* A checkpoint is of a built net and an optimiser made for its current build. */
static nn_status nn__checkpoint_pair(const nn_net *net, const nn_optim *opt, const char *fn)
{
    if (!net || !opt) return nn__fail(NN_ERR_ARG, "%s: net or opt is NULL", fn);
    if (opt->net != net) return nn__fail(NN_ERR_ARG, "%s: the optimiser is not this net's", fn);
    if (!net->built) return nn__fail(NN_ERR_STATE, "%s: build the net first", fn);
    return nn__optim_usable(opt, fn);
}

NNDEF nn_status nn_load_checkpoint_memory(nn_net *net, nn_optim *opt, const void *data, size_t size)
{
    nn__error_clear();
    nn__st_file f;
    nn_status st;
    const char *kind, *step, *lr, *rng, *comma;
    uint64_t kind_v, step_v, state, inc;
    float lr_v = 0.0f, eps = 0.0f;
    long tracked, *steps;
    nn_param_options *po;
    int i;
    if (!data) return nn__fail(NN_ERR_ARG, "nn_load_checkpoint: data is NULL");
    if ((st = nn__checkpoint_pair(net, opt, "nn_load_checkpoint")) != NN_OK) return st;
    po = (nn_param_options *)nn__calloc((size_t)net->num_params + 1, sizeof *po);
    steps = (long *)nn__calloc((size_t)net->num_params + 1, sizeof *steps);
    if (!po || !steps) {
        nn__free(po);
        nn__free(steps);
        return nn__fail(NN_ERR_NOMEM, "nn_load_checkpoint: out of memory");
    }
    if ((st = nn__st_parse(data, size, &f)) != NN_OK) {
        nn__free(po);
        nn__free(steps);
        return st;
    }
    kind = nn__st_meta(&f, "optimizer");
    step = nn__st_meta(&f, "optimizer_step");
    lr = nn__st_meta(&f, "optimizer_lr");
    rng = nn__st_meta(&f, "rng");
    comma = rng ? strchr(rng, ',') : NULL;
    if (!kind || !step || !lr || !rng)
        st = nn__fail(NN_ERR_FORMAT, "checkpoint: not a checkpoint (no optimiser state)");
    else if (!nn__parse_uint(kind, strlen(kind), 255, &kind_v))
        st = nn__fail(NN_ERR_FORMAT, "checkpoint: bad optimizer kind '%s'", kind);
    else if (kind_v != (uint64_t)opt->kind)
        st = nn__fail(NN_ERR_ARG, "checkpoint: the checkpoint is of another optimiser kind");
    else if (!nn__parse_uint(step, strlen(step), LONG_MAX, &step_v))
        st = nn__fail(NN_ERR_FORMAT, "checkpoint: optimizer_step '%s', expected an integer >= 0", step);
    else if (!nn__parse_float(&lr, &lr_v) || *lr || lr_v < 0.0f)
        st = nn__fail(NN_ERR_FORMAT, "checkpoint: optimizer_lr '%s', expected a finite number >= 0",
                      nn__st_meta(&f, "optimizer_lr"));
    else if (!comma || !nn__parse_uint(rng, (size_t)(comma - rng), UINT64_MAX, &state) ||
             !nn__parse_uint(comma + 1, strlen(comma + 1), UINT64_MAX, &inc) || !(inc & 1))
        st = nn__fail(NN_ERR_FORMAT, "checkpoint: bad random state '%s'", rng);
    else if ((st = nn__ckpt_read_extras(&f, net, (long)step_v, po, steps, &eps)) == NN_OK &&
             (st = nn__st_check(net, opt, &f, &tracked)) == NN_OK) {
        nn__st_copy(net, opt, &f, tracked);
        opt->step = (long)step_v;
        opt->lr = lr_v;
        net->rng.state = state;
        net->rng.inc = inc;
        net->label_smoothing = eps;
        for (i = 0; i < net->num_params; i++) {
            net->params[i].options = po[i];
            opt->steps[i] = steps[i];
        }
    }
    nn__st_free(&f);
    nn__free(po);
    nn__free(steps);
    return st;
}

#ifndef NN_NO_STDIO
#if defined(__unix__) || defined(__APPLE__)
#include <fcntl.h>      /* open, for fsync */
#include <sys/stat.h>
#include <unistd.h>
#define NN__POSIX_FILES 1
#endif

/* Writes a whole file so that a crash or a full disk never leaves the target half
   written: the bytes go to "<path>.tmp" in the same directory, are flushed (and, on
   POSIX systems, synced to the disk), and only then is the temporary file renamed over
   path. On failure it is removed and path is as it was. A target that exists and is
   not a regular file (a device, a FIFO) is written in place. */
static nn_status nn__write_file(const char *path, const unsigned char *data, size_t size)
{
    size_t len;
    char *tmp = NULL;
    const char *target = path;
    FILE *fp;
    int ok, err = 0, in_place = 0;
#ifdef NN__POSIX_FILES
    struct stat sb;
#endif
    if (!path) return nn__fail(NN_ERR_ARG, "save: path is NULL");
#ifdef NN__POSIX_FILES
    in_place = stat(path, &sb) == 0 && !S_ISREG(sb.st_mode);
#endif
    if (!in_place) {
        len = strlen(path);
        if (!(tmp = (char *)nn__alloc(len + 5))) return nn__fail(NN_ERR_NOMEM, "%s: out of memory", path);
        memcpy(tmp, path, len);
        memcpy(tmp + len, ".tmp", 5);
        target = tmp;
    }
    if (!(fp = fopen(target, "wb"))) {
        nn__fail(NN_ERR_IO, "%s: cannot create (%s)", target, strerror(errno));
        nn__free(tmp);
        return NN_ERR_IO;
    }
    ok = fwrite(data, 1, size, fp) == size && fflush(fp) == 0;
    if (!ok) err = errno;
    if (fclose(fp) != 0 && ok) { ok = 0; err = errno; }
#ifdef NN__POSIX_FILES
    if (ok && !in_place) {   /* the bytes on the disk before the new name points at them */
        int fd = open(tmp, O_RDONLY);
        if (fd < 0 || (fsync(fd) != 0 && errno != EINVAL)) { ok = 0; err = errno; }
        if (fd >= 0) close(fd);
    }
#endif
    if (ok && !in_place && rename(tmp, path) != 0) {
#ifdef _WIN32
        /* rename does not replace a file here: the one non-atomic moment */
        if (remove(path) != 0 || rename(tmp, path) != 0)
#endif
        { ok = 0; err = errno; }
    }
    if (!ok) {
        if (!in_place) remove(tmp);
        nn__fail(NN_ERR_IO, "%s: write failed (%s)", path, err ? strerror(err) : "unknown error");
    }
    nn__free(tmp);
    return ok ? NN_OK : NN_ERR_IO;
}

/* Reads a whole file; the buffer is freed with nn__free. */
static nn_status nn__read_file(const char *path, unsigned char **data, size_t *size)
{
    FILE *fp;
    nn_status st;
    *data = NULL;
    if (!path) return nn__fail(NN_ERR_ARG, "load: path is NULL");
    if ((st = nn__open(path, &fp)) != NN_OK) return st;
    if ((st = nn__file_size(fp, path, size)) == NN_OK &&
        !(*data = (unsigned char *)nn__alloc(*size + 1)))
        st = nn__fail(NN_ERR_NOMEM, "%s: cannot allocate %zu bytes", path, *size);
    if (st == NN_OK && (st = nn__read_exact(fp, path, *data, *size)) != NN_OK) {
        nn__free(*data);
        *data = NULL;
    }
    fclose(fp);
    return st;
}

NNDEF nn_status nn_save(nn_net *net, const char *path)
{
    nn__error_clear();
    unsigned char *data;
    size_t size;
    nn_status st;
    if (!path) return nn__fail(NN_ERR_ARG, "nn_save: path is NULL");
    if ((st = nn__save(net, NULL, &data, &size)) != NN_OK) return st;
    st = nn__write_file(path, data, size);
    nn__free(data);
    return st;
}

NNDEF nn_net *nn_load(const char *path, int max_batch)
{
    nn__error_clear();
    unsigned char *data;
    size_t size;
    nn_net *net;
    if (nn__read_file(path, &data, &size) != NN_OK) return NULL;
    net = nn_load_memory(data, size, max_batch);
    nn__free(data);
    if (!net) nn__prefix_error(path, NN_ERR_FORMAT);
    return net;
}

NNDEF nn_status nn_load_weights(nn_net *net, const char *path)
{
    nn__error_clear();
    unsigned char *data;
    size_t size;
    nn_status st;
    if (!net) return nn__fail(NN_ERR_ARG, "nn_load_weights: net is NULL");
    if ((st = nn__read_file(path, &data, &size)) != NN_OK) return st;
    st = nn__prefix_error(path, nn_load_weights_memory(net, data, size));
    nn__free(data);
    return st;
}

NNDEF nn_status nn_save_checkpoint(nn_net *net, const nn_optim *opt, const char *path)
{
    nn__error_clear();
    unsigned char *data;
    size_t size;
    nn_status st;
    if ((st = nn__checkpoint_pair(net, opt, "nn_save_checkpoint")) != NN_OK) return st;
    if (!path) return nn__fail(NN_ERR_ARG, "nn_save_checkpoint: path is NULL");
    if ((st = nn__save(net, opt, &data, &size)) != NN_OK) return st;
    st = nn__write_file(path, data, size);
    nn__free(data);
    return st;
}

NNDEF nn_status nn_load_checkpoint(nn_net *net, nn_optim *opt, const char *path)
{
    nn__error_clear();
    unsigned char *data;
    size_t size;
    nn_status st;
    if ((st = nn__checkpoint_pair(net, opt, "nn_load_checkpoint")) != NN_OK) return st;
    if ((st = nn__read_file(path, &data, &size)) != NN_OK) return st;
    st = nn__prefix_error(path, nn_load_checkpoint_memory(net, opt, data, size));
    nn__free(data);
    return st;
}
#endif

/* =================================================================================
   QUANTIZED INFERENCE
   ================================================================================= */

/* Post-training int8 quantization with PyTorch's definitions (torch.ao.quantization,
   eager mode, static), so that its results compare with PyTorch's:
   - weights: qint8 per output channel, symmetric: scale_w[c] = max |w[c]| / 127 (at
     least FLT_EPSILON), zero point 0, q = clamp(round(w / scale_w), -127, 127), after
     a BatchNorm that follows the Conv2d or Linear is folded into it:
     w' = w gamma / sqrt(var + eps), b' = (b - mean) gamma / sqrt(var + eps) + beta;
   - activations: quint8 per tensor, affine, scale and zero point from the minimum and
     maximum seen on the calibration images (PyTorch's MinMaxObserver: the range made
     to include 0, scale = (max - min) / 127, at least FLT_EPSILON, zero point
     = -round(min / scale) in 0..127) with reduce_range: the scale of 7 bits, 0..127, as
     PyTorch's x86 backends; the values are uint8, 0..255, as there: the 128 levels
     above the calibrated range take what the calibration images did not reach. The
     AVX2 and NEON kernels take levels below 128 (vpmaddubsw would saturate on larger
     ones: KERNELS, int8 kernels), so a GEMM whose input holds larger ones splits it
     (nn__qsplit); the VNNI ones take any;
   - a Conv2d or Linear: acc = sum (qx - zx) qw + qb in int32, with the bias quantized
     as qb = round(b / (scale_x scale_w[c])) (held within +-2^30); the output
     y = clamp(zy + round(acc * M), lo, 255), M = scale_x scale_w[c] / scale_y as a
     32-bit multiplier and a shift, rounding half away from zero (nn__qround), lo = zy
     when a ReLU follows (fused: it clamps at the zero point), else 0. The last layer's
     acc is dequantized to float logits: acc * scale_x scale_w[c];
   - MaxPool2d on uint8 (the input's scale and zero point); AvgPool2d and global
     average pooling: zy + round(sum (q - zx) / count) with the input's parameters
     (the count as AvgPool2d's); other activations (LeakyReLU, Tanh, Sigmoid, GELU,
     Softplus, Hardtanh, Scale, a ReLU that follows no Conv2d or Linear) map each of
     the 256 input levels through a table to levels of their own calibrated range;
     Flatten, Dropout and a 1x1 stride-1 AvgPool2d are nothing;
   - the input: q = clamp(round(x / scale) + zero point, 0, 255) (round to nearest
     even, as PyTorch's quantize_per_tensor; a NaN becomes 0).
   Residual blocks and a BatchNorm that follows no Conv2d or Linear are refused. */

#define NN__QBIAS_MAX 1073741824.0   /* |qb| <= 2^30: acc + qb - zx sum w stays in int32 */

enum { NN__QGEMM = 1, NN__QMAXPOOL, NN__QAVGPOOL, NN__QGAP, NN__QLUT };

typedef struct nn__qop {
    int      kind;
    int      layer, last;        /* the layers it runs: layer .. last (a BatchNorm, a ReLU) */
    int      relu;               /* GEMM: a ReLU fused */
    int      to_float;           /* the net's last op: its output is float */
    nn_shape in, out;
    float    in_scale, out_scale;
    int      in_zp, out_zp;
    /* GEMM (Conv2d, Linear): rows = out channels of a group; k = its row length */
    int      conv, groups, rows, k, kp;
    int8_t  *w;                  /* out x kp, zero-padded rows */
    float   *w_scale;            /* out */
    int32_t *bias;               /* out: qb as in the file */
    int32_t *bias_eff;           /* out: qb - zx sum_p qw */
    int32_t *mult;               /* out: requantization multipliers ... */
    int     *shift;              /* ... and shifts */
    float   *deq;                /* to_float: scale_x scale_w[c] */
    int8_t  *wp;                 /* x86: w packed for the kernels (KERNELS, packed int8 ...) */
    int32_t *par;                /* x86: their bias_eff, mult, shift, deq, 64 words a panel */
    int      panels;             /* x86: panels of 16 channels a group (even) */
    uint8_t  lut[256];           /* LUT */
} nn__qop;

struct nn__qnet {
    nn__qop *ops;
    int      num_ops;
    float    in_scale;
    int      in_zp;
    uint8_t *act[2];             /* activations, ping-pong, max_batch x the largest */
    uint8_t *col, *col_hi;       /* GEMM rows of the inputs (im2row), padded; the split */
    int32_t *acc, *acc_hi;
    size_t  *at;                 /* a GEMM column's output offset */
    float   *out;                /* the net's output, max_batch x outputs */
    size_t   act_size, col_size, acc_size, cols;
    int      isa;                /* nn__qisa */
};

static void nn__qnet_free(nn__qnet *q)
{
    int i;
    if (!q) return;
    for (i = 0; i < q->num_ops; i++) {
        nn__qop *op = &q->ops[i];
        nn__free(op->w); nn__free(op->w_scale); nn__free(op->bias); nn__free(op->bias_eff);
        nn__free(op->mult); nn__free(op->shift); nn__free(op->deq); nn__free(op->wp); nn__free(op->par);
    }
    nn__free(q->ops);
    nn__free(q->act[0]); nn__free(q->act[1]);
    nn__free(q->col); nn__free(q->col_hi); nn__free(q->acc); nn__free(q->acc_hi); nn__free(q->at); nn__free(q->out);
    nn__free(q);
}

/* PyTorch's MinMaxObserver (quint8, per tensor affine, quant range 0..NN__QMAX). */
static void nn__qparams(float lo, float hi, float *scale, int *zp)
{
    float mn = lo < 0.0f ? lo : 0.0f, mx = hi > 0.0f ? hi : 0.0f, s = (mx - mn) / (float)NN__QMAX;
    float z;
    if (!(s > FLT_EPSILON)) s = FLT_EPSILON;
    z = 0.0f - rintf(mn / s);
    *scale = s;
    *zp = z < 0.0f ? 0 : z > (float)NN__QMAX ? NN__QMAX : (int)z;
}

/* quantize_per_tensor: round half to even of v / scale, plus the zero point, clamped. */
static uint8_t nn__qinput(float v, float inv_scale, int zp)
{
    float q = rintf(v * inv_scale) + (float)zp;
    if (!(q >= 0.0f)) return 0;   /* a NaN too */
    return (uint8_t)(q > 255.0f ? 255 : (int)q);
}

static const char *nn__qprefix(const nn_net *net, int i, char buf[16])
{
    if (net->layers[i].name[0]) return net->layers[i].name;
    snprintf(buf, 16, "%d", i);
    return buf;
}

/* The ops of a planned net (shapes known): which layers each runs. Allocates q->ops
   only (zeroed). */
static nn_status nn__qcompile(const nn_net *net, nn__qnet *q, const char *fn)
{
    int i, n = 0;
    if (!(q->ops = (nn__qop *)nn__calloc((size_t)net->num_layers, sizeof(nn__qop))))
        return nn__fail(NN_ERR_NOMEM, "%s: out of memory", fn);
    for (i = 0; i < net->num_layers; i++) {
        const nn_layer *L = &net->layers[i];
        const nn_layer_desc *d = &L->desc;
        nn__qop *op = &q->ops[n];
        switch (d->kind) {
        case NN_FLATTEN: case NN_DROPOUT: continue;
        case NN_AVGPOOL2D:
            if (d->kernel_h == 1 && d->kernel_w == 1 && d->stride_h == 1 && d->stride_w == 1 &&
                !d->pad_h && !d->pad_w) continue;
            op->kind = NN__QAVGPOOL;
            break;
        case NN_MAXPOOL2D: op->kind = NN__QMAXPOOL; break;
        case NN_GLOBAL_AVGPOOL: op->kind = NN__QGAP; break;
        case NN_CONV2D: case NN_LINEAR:
            op->kind = NN__QGEMM;
            op->conv = d->kind == NN_CONV2D;
            op->groups = op->conv ? d->groups : 1;
            op->rows = d->out / op->groups;
            op->k = op->conv ? L->in.c / op->groups * d->kernel_h * d->kernel_w : (int)nn_shape_size(L->in);
            if (op->k > NN__QMAX_K)
                return nn__fail(NN_ERR_ARG, "%s: layer %d (%s) has rows of %d weights, more than the %d "
                                "of int8 products", fn, i, nn_layer_name(d->kind), op->k, NN__QMAX_K);
            op->kp = (op->k + NN__QK - 1) / NN__QK * NN__QK;
            op->last = i;
            if (i + 1 < net->num_layers && net->layers[i + 1].desc.kind == NN_BATCHNORM) op->last = ++i;
            if (i + 1 < net->num_layers && net->layers[i + 1].desc.kind == NN_RELU) {
                op->relu = 1;
                op->last = ++i;
            }
            break;
        case NN_RELU: case NN_LEAKY_RELU: case NN_SIGMOID: case NN_TANH: case NN_GELU:
        case NN_SOFTPLUS: case NN_HARDTANH: case NN_SCALE:
            op->kind = NN__QLUT;
            break;
        case NN_BATCHNORM:
            return nn__fail(NN_ERR_ARG, "%s: layer %d (BatchNorm) follows no Conv2d or Linear to fold it "
                            "into", fn, i);
        default:
            return nn__fail(NN_ERR_ARG, "%s: layer %d (%s) has no int8 form (supported: Conv2d, Linear, "
                            "BatchNorm after them, ReLU, LeakyReLU, Sigmoid, Tanh, GELU, Softplus, "
                            "Hardtanh, Scale, MaxPool2d, AvgPool2d, GlobalAvgPool, Flatten, Dropout)",
                            fn, i, nn_layer_name(d->kind));
        }
        op->layer = L - net->layers;
        if (op->kind != NN__QGEMM) op->last = op->layer;
        op->in = net->layers[op->layer].in;
        op->out = net->layers[op->last].out;
        n++;
    }
    if (!n) return nn__fail(NN_ERR_ARG, "%s: the net has no layer to quantize", fn);
    q->num_ops = n;
    q->ops[n - 1].to_float = q->ops[n - 1].kind == NN__QGEMM;
    return NN_OK;
}

/* The samples of n that a Conv2d op's GEMM takes at once: NN__QCOLS columns (output
   pixels) or more, one sample at least; the packed kernels then stream the weights once
   for all of them. */
#define NN__QCOLS 256
#define NN__QPAD_BYTES 4   /* im2row reads up to 3 bytes past an input (nn__qim2row) */

static int nn__qchunk(const nn__qop *op, int n)
{
    int P = op->out.h * op->out.w, s = P >= NN__QCOLS ? 1 : (NN__QCOLS + P - 1) / P;
    return s < n ? s : n;
}

/* The buffers of a compiled net for max_batch samples and their bytes (weights and
   tables included); *bytes is SIZE_MAX where a size overflows. */
static size_t nn__qbuffers(const nn_net *net, nn__qnet *q, int max_batch)
{
    size_t most = nn_shape_size(net->input), total = 0, b = (size_t)max_batch, s;
    int i;
    q->col_size = q->acc_size = 0;
    for (i = 0; i < q->num_ops; i++) {
        const nn__qop *op = &q->ops[i];
        size_t P = (size_t)op->out.h * op->out.w, rows_n;
        if (nn_shape_size(op->out) > most) most = nn_shape_size(op->out);
        if (op->kind != NN__QGEMM) continue;
        rows_n = op->conv ? P * (size_t)nn__qchunk(op, max_batch) : b;
        if (rows_n > q->cols) q->cols = rows_n;
        if (!nn__mul_ok(rows_n + NN__QPAD_COLS, (size_t)op->kp, &s)) return SIZE_MAX;
        if (s > q->col_size) q->col_size = s;
        if (!nn__mul_ok(rows_n, (size_t)op->rows, &s)) return SIZE_MAX;
        if (s > q->acc_size) q->acc_size = s;
        if (!nn__mul_ok((size_t)op->rows * op->groups, (size_t)op->kp + 32, &s) || !nn__plan_add(&total, s, 1))
            return SIZE_MAX;
        /* the packed copy: panels of 16 channels, an even count a group */
        if (!nn__mul_ok((size_t)((op->rows + 31) / 32 * 32) * op->groups, (size_t)op->kp + 16, &s) ||
            !nn__plan_add(&total, s, 1))
            return SIZE_MAX;
    }
    if (!nn__mul_ok(most, b, &q->act_size) || !nn__plan_add(&total, q->act_size + NN__QPAD_BYTES, 2) ||
        !nn__plan_add(&total, q->col_size, 2) || !nn__plan_add(&total, q->acc_size, 8) ||
        !nn__plan_add(&total, q->cols, sizeof(size_t)) ||
        !nn__plan_add(&total, nn_shape_size(nn__net_output(net)) * b, 4) ||
        !nn__plan_add(&total, (size_t)q->num_ops * sizeof(nn__qop), 1))
        return SIZE_MAX;
    return total;
}

static nn_status nn__qalloc_buffers(const nn_net *net, nn__qnet *q, int max_batch, const char *fn)
{
    q->act[0] = (uint8_t *)nn__calloc(q->act_size + NN__QPAD_BYTES, 1);
    q->act[1] = (uint8_t *)nn__calloc(q->act_size + NN__QPAD_BYTES, 1);
    q->col = (uint8_t *)nn__calloc(q->col_size ? q->col_size : 1, 1);
    q->col_hi = (uint8_t *)nn__calloc(q->col_size ? q->col_size : 1, 1);
    q->acc = (int32_t *)nn__calloc(q->acc_size ? q->acc_size : 1, sizeof(int32_t));
    q->acc_hi = (int32_t *)nn__calloc(q->acc_size ? q->acc_size : 1, sizeof(int32_t));
    q->at = (size_t *)nn__calloc(q->cols ? q->cols : 1, sizeof(size_t));
    q->out = (float *)nn__calloc(nn_shape_size(nn__net_output(net)) * (size_t)max_batch, sizeof(float));
    if (!q->act[0] || !q->act[1] || !q->col || !q->col_hi || !q->acc || !q->acc_hi || !q->at || !q->out)
        return nn__fail(NN_ERR_NOMEM, "%s: out of memory", fn);
    return NN_OK;
}

/* The op's arrays for its weights (GEMM), zeroed. */
static nn_status nn__qop_alloc(nn__qop *op, const char *fn)
{
    size_t out = (size_t)op->rows * op->groups;
    if (op->kind != NN__QGEMM) return NN_OK;
    op->w = (int8_t *)nn__calloc(out, (size_t)op->kp);
    op->w_scale = (float *)nn__calloc(out, sizeof(float));
    op->bias = (int32_t *)nn__calloc(out, sizeof(int32_t));
    op->bias_eff = (int32_t *)nn__calloc(out, sizeof(int32_t));
    op->mult = (int32_t *)nn__calloc(out, sizeof(int32_t));
    op->shift = (int *)nn__calloc(out, sizeof(int));
    op->deq = (float *)nn__calloc(out, sizeof(float));
    if (!op->w || !op->w_scale || !op->bias || !op->bias_eff || !op->mult || !op->shift || !op->deq)
        return nn__fail(NN_ERR_NOMEM, "%s: out of memory", fn);
    return NN_OK;
}

/* The table of an activation op: every input level through the float layer. */
static void nn__qop_lut(const nn_net *net, nn__qop *op)
{
    float x[256], y[256], inv = 1.0f / op->out_scale;
    nn_layer tmp = net->layers[op->layer];
    nn__run r;
    int v;
    memset(&r, 0, sizeof r);
    tmp.in = tmp.out = nn_shape1(256);
    for (v = 0; v < 256; v++) x[v] = (float)(v - op->in_zp) * op->in_scale;
    nn__ops(tmp.desc.kind)->forward(&r, &tmp, x, y, 1);
    for (v = 0; v < 256; v++) op->lut[v] = nn__qinput(y[v], inv, op->out_zp);
}

/* The packed weights and parameters of a GEMM op (KERNELS, packed int8 kernels): per
   group, panels of 16 channels (an even count), each [k / 4][16][4] bytes and 64 words
   of parameters; the channels past the group's rows zero, multiplier 0, shift 1. */
static nn_status nn__qop_pack(nn__qop *op, const char *fn)
{
#ifdef NN__X86
    int g, c, p, t, kg = op->kp / 4, panels = (op->rows + 31) / 32 * 2;
    op->panels = panels;
    op->wp = (int8_t *)nn__calloc((size_t)op->groups * panels * kg, 64);
    op->par = (int32_t *)nn__calloc((size_t)op->groups * panels, 64 * sizeof(int32_t));
    if (!op->wp || !op->par) return nn__fail(NN_ERR_NOMEM, "%s: out of memory", fn);
    for (g = 0; g < op->groups; g++)
        for (c = 0; c < panels * 16; c++) {
            int8_t *wp = op->wp + ((size_t)g * panels + c / 16) * kg * 64 + (c % 16) * 4;
            int32_t *par = op->par + ((size_t)g * panels + c / 16) * 64 + c % 16;
            int ch = g * op->rows + c;
            if (c >= op->rows) { par[32] = 1; continue; }
            for (p = 0; p < kg; p++)
                for (t = 0; t < 4; t++) wp[(size_t)p * 64 + t] = op->w[(size_t)ch * op->kp + 4 * p + t];
            par[0] = op->bias_eff[ch];
            par[16] = op->mult[ch];
            par[32] = op->to_float ? 1 : op->shift[ch];
            memcpy(&par[48], &op->deq[ch], 4);
        }
#else
    (void)op; (void)fn;
#endif
    return NN_OK;
}

/* Everything an op derives from its quantized weights and the scales: the effective
   biases, the requantization multipliers, the dequantization scales, the table.
   Also checks the scales of a file: NN_ERR_FORMAT (fn names the caller). */
static nn_status nn__qop_prepare(const nn_net *net, nn__qop *op, const char *fn)
{
    int c, p, out = op->rows * op->groups;
    if (op->kind == NN__QLUT) { nn__qop_lut(net, op); return NN_OK; }
    if (op->kind != NN__QGEMM) return NN_OK;
    for (c = 0; c < out; c++) {
        int32_t sum = 0;
        double M = (double)op->in_scale * op->w_scale[c] / (op->to_float ? 1.0 : (double)op->out_scale);
        for (p = 0; p < op->k; p++) sum += op->w[(size_t)c * op->kp + p];
        op->bias_eff[c] = op->bias[c] - op->in_zp * sum;
        op->deq[c] = op->in_scale * op->w_scale[c];
        if (!op->to_float && !nn__qmultiplier(M, &op->mult[c], &op->shift[c]))
            return nn__fail(NN_ERR_FORMAT, "%s: layer %d (%s): the requantization scale %g of channel %d "
                            "is out of range", fn, op->layer, nn_layer_name(net->layers[op->layer].desc.kind), M, c);
    }
    return nn__qop_pack(op, fn);
}

/* ---- Forward ---------------------------------------------------------------------- */

/* im2row of one sample's channels c0 .. c0 + C - 1: row p (an output pixel) holds the
   kernel's window over them, channel-major as the weights, the padding at the input's
   zero point, then zeros up to kp. A window row of up to 4 bytes is moved as 4 where
   the extra bytes fall in the same row: a later window row overwrites them, or the
   zeros do (the activations have NN__QPAD_BYTES more to read). */
static void nn__qim2row(const uint8_t *x, const nn_layer *L, int c0, int C, uint8_t pad, uint8_t *col, int kp)
{
    const nn_layer_desc *d = &L->desc;
    const int H = L->in.h, W = L->in.w, oh = L->out.h, ow = L->out.w, kh = d->kernel_h, kw = d->kernel_w;
    const int sh = d->stride_h, sw = d->stride_w, ph = d->pad_h, pw = d->pad_w, dh = d->dilation_h;
    const int dw = d->dilation_w, k = C * kh * kw, span = W - 1 - (kw - 1) * dw + pw;
    /* the output columns whose window lies inside the input: lo .. hi - 1 */
    const int lo = (pw + sw - 1) / sw, hi0 = span < 0 ? 0 : span / sw + 1, hi = hi0 > ow ? ow : hi0 < lo ? lo : hi0;
    const size_t P = (size_t)oh * ow, skp = (size_t)kp;
    int oy, ox, c, ky, kx;
    size_t p;
    for (c = 0; c < C; c++)   /* a window row of every output pixel at a time */
        for (ky = 0; ky < kh; ky++) {
            const uint8_t *xc = x + (size_t)(c0 + c) * H * W;
            size_t off = (size_t)(c * kh + ky) * kw;
            int fast = kw <= 4 && dw == 1 && off + 4 <= skp;
            for (oy = 0; oy < oh; oy++) {
                int iy = oy * sh - ph + ky * dh;
                const uint8_t *xr = xc + (size_t)(iy < 0 || iy >= H ? 0 : iy) * W;
                uint8_t *dst = col + (size_t)oy * ow * skp + off;
                if (iy < 0 || iy >= H) {
                    for (ox = 0; ox < ow; ox++) memset(dst + ox * skp, pad, (size_t)kw);
                    continue;
                }
                for (ox = 0; ox < ow; ox++) {
                    int ix0 = ox * sw - pw;
                    uint8_t *o = dst + ox * skp;
                    if (ox == lo && lo < hi && fast) {   /* the inside: 4 bytes moved, kw kept */
                        for (; ox < hi; ox++) memcpy(dst + ox * skp, xr + ox * sw - pw, 4);
                        ox--;
                    } else if (ox >= lo && ox < hi)
                        for (kx = 0; kx < kw; kx++) o[kx] = xr[ix0 + kx * dw];
                    else
                        for (kx = 0; kx < kw; kx++) {
                            int ix = ix0 + kx * dw;
                            o[kx] = ix >= 0 && ix < W ? xr[ix] : pad;
                        }
                }
            }
        }
    for (p = 0; p < P; p++) memset(col + p * skp + k, 0, skp - (size_t)k);
}

/* One GEMM of an op: rows r0..r1 of group g over n columns (col: im2row rows of one
   or more samples, or a Linear's samples), requantized (or dequantized) into the
   output: column j's channel c at at[j] + c cs. The packed kernel where there is one,
   else the kernel of nn__qgemm_pick into acc and the requantization here. */
typedef struct nn__qgemm_task {
    const nn__qop *op;
    nn__qkern_fn kern;
    nn__qgemm_fn gemm;
    const uint8_t *col, *col_hi;   /* col_hi: the split's high bits, or NULL */
    int32_t *acc, *acc_hi;
    uint8_t *y;
    float *yf;
    const size_t *at;
    size_t cs;
    int g, n, per, split;  /* group, columns, rows per task (a multiple of 32), AVX2's split */
} nn__qgemm_task;

static void nn__qgemm_rows(void *ctx, int task)
{
    const nn__qgemm_task *t = (const nn__qgemm_task *)ctx;
    const nn__qop *op = t->op;
    int r0 = task * t->per, r1 = r0 + t->per > op->rows ? op->rows : r0 + t->per, r, j, n = t->n;
    int lo = op->relu ? op->out_zp : 0;
    if (r0 >= r1) return;
    if (t->kern) {
        nn__qblock b;
        size_t panel = (size_t)t->g * op->panels + (size_t)r0 / 16;
        b.kp = op->kp; b.n = n; b.rows = r1 - r0; b.c0 = t->g * op->rows + r0;
        b.split = t->split; b.to_float = op->to_float; b.zp = op->out_zp; b.lo = lo;
        b.w = op->wp + panel * (size_t)(op->kp / 4) * 64;
        b.par = op->par + panel * 64;
        b.x = t->col; b.y = t->y; b.yf = t->yf; b.at = t->at; b.cs = t->cs;
        t->kern(&b);
        return;
    }
    t->gemm(r1 - r0, n, op->kp, op->w + ((size_t)t->g * op->rows + r0) * op->kp, t->col,
            t->acc + (size_t)r0 * n, n);
    if (t->col_hi) {   /* x = lo + 128 hi */
        t->gemm(r1 - r0, n, op->kp, op->w + ((size_t)t->g * op->rows + r0) * op->kp, t->col_hi,
                t->acc_hi + (size_t)r0 * n, n);
        for (j = 0; j < (r1 - r0) * n; j++) t->acc[(size_t)r0 * n + j] += 128 * t->acc_hi[(size_t)r0 * n + j];
    }
    for (r = r0; r < r1; r++) {
        int c = t->g * op->rows + r, shift = op->shift[c];
        const int32_t *a = t->acc + (size_t)r * n;
        int32_t be = op->bias_eff[c], mult = op->mult[c];
        for (j = 0; j < n; j++) {
            size_t at = t->at[j] + (size_t)c * t->cs;
            if (op->to_float) t->yf[at] = (float)(a[j] + be) * op->deq[c];
            else {
                int32_t v = op->out_zp + nn__qround(a[j] + be, mult, shift);
                t->y[at] = (uint8_t)(v < lo ? lo : v > 255 ? 255 : v);
            }
        }
    }
}

/* Whether the columns hold levels above 127. */
static int nn__qhigh(const uint8_t *col, size_t count)
{
    size_t i;
    unsigned any = 0;
    for (i = 0; i < count; i++) any |= col[i];
    return (any & 0x80) != 0;
}

/* The NEON kernels take activations below 128, the AVX2 one too unless told (split).
   An input with larger ones (beyond the calibrated range: PyTorch's reduce_range narrows
   the scale, not the values) is split, x = lo + 128 hi with lo = x & 127 and hi = x >> 7,
   into two products summed exactly (the VNNI kernels and the scalar one take any byte).
   For the kernels of nn__qgemm_pick: col split into col and hi, NULL or hi returned. */
static const uint8_t *nn__qsplit(const nn__qgemm_task *t, uint8_t *col, uint8_t *hi, size_t count, int *split)
{
    size_t i;
    *split = 0;
    if (t->kern) {
        *split = t->kern == nn__qkern_pick(1, NULL) && nn__qhigh(col, count);
        return NULL;
    }
    if (t->gemm == nn__qgemm_scalar || !nn__qhigh(col, count)) return NULL;
    for (i = 0; i < count; i++) {
        hi[i] = (uint8_t)(col[i] >> 7);
        col[i] &= 127;
    }
    return hi;
}

/* A Conv2d or Linear op on n samples: x -> y (uint8) or yf (float, the last op). */
static void nn__qgemm_op(const nn_net *net, const nn__qop *op, const uint8_t *x, uint8_t *y, float *yf, int n)
{
    nn__qnet *q = net->q;
    nn__qgemm_task t;
    int blocks = (op->rows + 31) / 32, threads = nn_get_threads(), tasks, s, g, i, j, P, spp;
    int cg = op->in.c / op->groups;
    size_t in = nn_shape_size(op->in), outs = nn_shape_size(op->out);
    memset(&t, 0, sizeof t);
    tasks = blocks < threads ? blocks : threads;
    t.op = op;
    t.kern = nn__qkern_pick(q->isa, NULL);
    t.gemm = nn__qgemm_pick(NULL);
    t.col = q->col;
    t.acc = q->acc;
    t.acc_hi = q->acc_hi;
    t.at = q->at;
    t.y = y;
    t.yf = yf;
    t.per = (blocks + tasks - 1) / tasks * 32;
    if (!op->conv) {
        for (s = 0; s < n; s++) {
            memcpy(q->col + (size_t)s * op->kp, x + (size_t)s * in, in);
            memset(q->col + (size_t)s * op->kp + in, 0, (size_t)(op->kp - op->k));
            q->at[s] = (size_t)s * outs;
        }
        t.n = n;
        t.cs = 1;
        t.col_hi = nn__qsplit(&t, q->col, q->col_hi, (size_t)n * op->kp, &t.split);
        nn__parallel(tasks, nn__qgemm_rows, &t);
        return;
    }
    P = op->out.h * op->out.w;
    spp = nn__qchunk(op, n);
    t.cs = (size_t)P;
    for (s = 0; s < n; s += spp) {
        int m = n - s < spp ? n - s : spp;
        t.n = m * P;
        for (j = 0; j < t.n; j++) q->at[j] = (size_t)(s + j / P) * outs + (size_t)(j % P);
        for (g = 0; g < op->groups; g++) {
            for (i = 0; i < m; i++)
                nn__qim2row(x + (size_t)(s + i) * in, &net->layers[op->layer], g * cg, cg, (uint8_t)op->in_zp,
                            q->col + (size_t)i * P * op->kp, op->kp);
            t.col_hi = nn__qsplit(&t, q->col, q->col_hi, (size_t)t.n * op->kp, &t.split);
            t.g = g;
            nn__parallel(tasks, nn__qgemm_rows, &t);
        }
    }
}

/* zp + round(sum / count), half away from zero, clamped to the levels. */
static uint8_t nn__qavg(int64_t sum, int64_t count, int zp)
{
    int64_t r = sum >= 0 ? (2 * sum + count) / (2 * count) : -((-2 * sum + count) / (2 * count)), v = zp + r;
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* MaxPool2d, AvgPool2d and global average pooling on n samples of uint8. */
static void nn__qpool_op(const nn_net *net, const nn__qop *op, const uint8_t *x, uint8_t *y, int n)
{
    const nn_layer *L = &net->layers[op->layer];
    int planes = n * op->in.c, c, oy, ox, ky, kx, zp = op->in_zp;
    nn__pool_geom g = nn__pool_geom_of(L);
    if (op->kind == NN__QMAXPOOL && g.W <= 1024) {   /* separable: the rows' maximum, then the window's */
        uint8_t v[1024];
        for (c = 0; c < planes; c++) {
            const uint8_t *xc = x + (size_t)c * g.H * g.W;
            for (oy = 0; oy < op->out.h; oy++) {
                int y0 = oy * g.sh - g.ph, y1 = y0 + g.kh, x0, x1;
                y0 = y0 < 0 ? 0 : y0;
                y1 = y1 > g.H ? g.H : y1;
                memcpy(v, xc + (size_t)y0 * g.W, (size_t)g.W);
                for (ky = y0 + 1; ky < y1; ky++)
                    for (kx = 0; kx < g.W; kx++) {
                        uint8_t e = xc[(size_t)ky * g.W + kx];
                        v[kx] = e > v[kx] ? e : v[kx];
                    }
                for (ox = 0; ox < op->out.w; ox++) {
                    uint8_t best;
                    x0 = ox * g.sw - g.pw;
                    x1 = x0 + g.kw > g.W ? g.W : x0 + g.kw;
                    x0 = x0 < 0 ? 0 : x0;
                    for (best = v[x0], kx = x0 + 1; kx < x1; kx++) best = v[kx] > best ? v[kx] : best;
                    *y++ = best;
                }
            }
        }
        return;
    }
    if (op->kind == NN__QGAP) {
        size_t hw = (size_t)op->in.h * op->in.w, j;
        for (c = 0; c < planes; c++) {
            int64_t sum = 0;
            for (j = 0; j < hw; j++) sum += x[(size_t)c * hw + j] - zp;
            y[c] = nn__qavg(sum, (int64_t)hw, zp);
        }
        return;
    }
    for (c = 0; c < planes; c++) {
        const uint8_t *xc = x + (size_t)c * g.H * g.W;
        for (oy = 0; oy < op->out.h; oy++)
            for (ox = 0; ox < op->out.w; ox++) {
                nn__pool_win w = nn__pool_window(g, oy, ox);
                int best = 0, qh, qw;
                int64_t sum = 0;
                for (ky = w.ky0; ky < w.ky1; ky++)
                    for (kx = w.kx0; kx < w.kx1; kx++) {
                        int v = xc[(size_t)(w.y0 + ky) * g.W + w.x0 + kx];
                        best = v > best ? v : best;
                        sum += v - zp;
                    }
                if (op->kind == NN__QMAXPOOL) { *y++ = (uint8_t)best; continue; }
                if (L->desc.exclude_pad) {
                    qh = w.ky1 - w.ky0;
                    qw = w.kx1 - w.kx0;
                } else {   /* as nn__avgpool_scale: the window clipped to the padded input */
                    int ye = g.H + g.ph - w.y0, xe = g.W + g.pw - w.x0;
                    qh = g.kh < ye ? g.kh : ye;
                    qw = g.kw < xe ? g.kw : xe;
                }
                *y++ = nn__qavg(sum, (int64_t)qh * qw, zp);
            }
    }
}

static const float *nn__qforward(nn_net *net, const float *x, int n)
{
    nn__qnet *q = net->q;
    size_t count = (size_t)n * nn_shape_size(net->input), i;
    float inv = 1.0f / q->in_scale;
    uint8_t *cur = q->act[0], *next = q->act[1], *swap;
    const nn__qop *last = &q->ops[q->num_ops - 1];
    int k;
    for (i = 0; i < count; i++) cur[i] = nn__qinput(x[i], inv, q->in_zp);
    for (k = 0; k < q->num_ops; k++) {
        const nn__qop *op = &q->ops[k];
        if (op->kind == NN__QGEMM) nn__qgemm_op(net, op, cur, next, op->to_float ? q->out : NULL, n);
        else if (op->kind == NN__QLUT)
            for (i = 0, count = (size_t)n * nn_shape_size(op->in); i < count; i++) next[i] = op->lut[cur[i]];
        else nn__qpool_op(net, op, cur, next, n);
        swap = cur; cur = next; next = swap;
    }
    if (!last->to_float)
        for (i = 0, count = (size_t)n * nn_shape_size(last->out); i < count; i++)
            q->out[i] = (float)(cur[i] - last->out_zp) * last->out_scale;
    net->batch = n;
    return q->out;
}

/* ---- Building an int8 net ----------------------------------------------------------- */

/* Plans net (its layers added, not built) for the layer shapes, keeps none of the float
   tables, compiles its ops and sizes its buffers against NN_MAX_BUILD_BYTES. */
static nn_status nn__qshell(nn_net *net, int max_batch, const char *fn)
{
    size_t ignored, bytes;
    nn_status st = nn__net_plan(net, max_batch, &ignored);
    nn__net_release_buffers(net);
    if (st != NN_OK) return nn__prefix_error(fn, st);
    if (!(net->q = (nn__qnet *)nn__calloc(1, sizeof(nn__qnet)))) return nn__fail(NN_ERR_NOMEM, "%s: out of memory", fn);
    if ((st = nn__qcompile(net, net->q, fn)) != NN_OK) return st;
    if ((bytes = nn__qbuffers(net, net->q, max_batch)) > (size_t)NN_MAX_BUILD_BYTES)
        return nn__fail(NN_ERR_NOMEM, "%s: the int8 net for batches of %d would take %zu bytes, more than "
                        "NN_MAX_BUILD_BYTES (%zu)", fn, max_batch, bytes, (size_t)NN_MAX_BUILD_BYTES);
    net->max_batch = max_batch;
    return NN_OK;
}

/* The last step of both ways to an int8 net: buffers, derived tables, state. */
static nn_status nn__qfinish(nn_net *net, const char *fn)
{
    nn__qnet *q = net->q;
    nn_status st;
    int k;
    for (k = 0; k < q->num_ops; k++)
        if ((st = nn__qop_prepare(net, &q->ops[k], fn)) != NN_OK) return st;
    if ((st = nn__qalloc_buffers(net, q, net->max_batch, fn)) != NN_OK) return st;
    q->isa = nn__qisa();
    net->built = 1;
    net->inference = 1;
    net->training = 0;
    return NN_OK;
}

/* Quantizes a GEMM op's weights from the float layer (and the BatchNorm folded in). */
static nn_status nn__qop_weights(const nn_net *net, nn__qop *op)
{
    const nn_layer *L = &net->layers[op->layer];
    const nn_layer *B = op->last > op->layer && net->layers[op->layer + 1].desc.kind == NN_BATCHNORM
                      ? &net->layers[op->layer + 1] : NULL;
    int c, p, outs = op->rows * op->groups;
    float *w = (float *)nn__alloc((size_t)op->k * sizeof(float));
    if (!w) return nn__fail(NN_ERR_NOMEM, "nn_quantize: out of memory");
    for (c = 0; c < outs; c++) {
        float a = 1.0f, b = L->bias ? L->bias->value[c] : 0.0f, mx = 0.0f, s, inv;
        double qb;
        if (B) {   /* PyTorch's fuse_conv_bn_weights */
            float eps = B->desc.eps != 0.0f ? B->desc.eps : 1e-5f, rs = 1.0f / sqrtf(B->running_var->value[c] + eps);
            float gamma = B->weight ? B->weight->value[c] : 1.0f, beta = B->bias ? B->bias->value[c] : 0.0f;
            a = gamma * rs;
            b = (b - B->running_mean->value[c]) * rs * gamma + beta;
        }
        for (p = 0; p < op->k; p++) {
            w[p] = L->weight->value[(size_t)c * op->k + p] * a;
            mx = fabsf(w[p]) > mx ? fabsf(w[p]) : mx;
        }
        if (!isfinite(mx) || !isfinite(b)) {
            nn__free(w);
            return nn__fail(NN_ERR_NUMERIC, "nn_quantize: layer %d (%s): channel %d holds a NaN or an "
                            "infinity", op->layer, nn_layer_name(L->desc.kind), c);
        }
        s = mx / 127.0f;
        if (!(s > FLT_EPSILON)) s = FLT_EPSILON;
        inv = 1.0f / s;
        for (p = 0; p < op->k; p++) {
            float v = rintf(w[p] * inv);
            op->w[(size_t)c * op->kp + p] = (int8_t)(v < -127.0f ? -127 : v > 127.0f ? 127 : (int)v);
        }
        op->w_scale[c] = s;
        qb = nearbyint((double)b / ((double)op->in_scale * s));
        op->bias[c] = (int32_t)(qb < -NN__QBIAS_MAX ? -NN__QBIAS_MAX : qb > NN__QBIAS_MAX ? NN__QBIAS_MAX : qb);
    }
    nn__free(w);
    return NN_OK;
}

/* The float net's layer i's output range over the calibration images (lo, hi). */
static void nn__qobserve(const float *v, size_t count, float *lo, float *hi)
{
    size_t i;
    for (i = 0; i < count; i++) {
        if (v[i] < *lo) *lo = v[i];
        if (v[i] > *hi) *hi = v[i];
    }
}

NNDEF nn_net *nn_quantize(nn_net *net, const nn_dataset *calibration, int count, nn_quantize_desc desc)
{
    nn__error_clear();
    nn_net *copy = NULL, *qn = NULL;
    unsigned char *image = NULL;
    size_t image_size, in;
    float *lo = NULL, *hi = NULL, scale;
    int chunk, start, i, k, max_batch, zp;
    nn__qnet *q;
    if (!net || !calibration) { nn__fail(NN_ERR_ARG, "nn_quantize: net or calibration is NULL"); return NULL; }
    if (!net->built) { nn__fail(NN_ERR_STATE, "nn_quantize: the net is not built"); return NULL; }
    if (net->q) { nn__fail(NN_ERR_ARG, "nn_quantize: the net is already quantized"); return NULL; }
    in = nn_shape_size(net->input);
    if (!calibration->x || nn_shape_size(calibration->shape) != in || count < 1 || count > calibration->n ||
        desc.max_batch < 0) {
        nn__fail(NN_ERR_ARG, "nn_quantize: %d calibration samples of %dx%dx%d (the set has %d) for a net that "
                 "takes %dx%dx%d, max_batch %d: expected 1 to n samples of the net's input, max_batch >= 0",
                 count, calibration->shape.c, calibration->shape.h, calibration->shape.w, calibration->n,
                 net->input.c, net->input.h, net->input.w, desc.max_batch);
        return NULL;
    }
    max_batch = desc.max_batch ? desc.max_batch : net->max_batch;
    /* The int8 net's layers, shapes and ops first: an unsupported layer fails early. */
    if (!(qn = nn_net_new(net->input))) return NULL;
    for (i = 0; i < net->num_layers; i++)
        if (nn_add(qn, net->layers[i].desc) != NN_OK) goto fail;
    if (nn__qshell(qn, max_batch, "nn_quantize") != NN_OK) goto fail;
    q = qn->q;
    /* A private float copy in evaluation mode that keeps every layer's output. */
    chunk = count < 64 ? count : 64;
    if (nn_save_memory(net, &image, &image_size) != NN_OK) goto fail;
    copy = nn_load_memory(image, image_size, chunk);
    nn_free_buffer(image);
    if (!copy) goto fail;
    lo = (float *)nn__alloc((size_t)(net->num_layers + 1) * sizeof(float));
    hi = (float *)nn__alloc((size_t)(net->num_layers + 1) * sizeof(float));
    if (!lo || !hi) { nn__fail(NN_ERR_NOMEM, "nn_quantize: out of memory"); goto fail; }
    for (i = 0; i <= net->num_layers; i++) { lo[i] = INFINITY; hi[i] = -INFINITY; }
    for (start = 0; start < count; start += chunk) {
        int m = count - start < chunk ? count - start : chunk;
        const float *xb = calibration->x + (size_t)start * in;
        if (!nn_forward(copy, xb, m)) goto fail;
        nn__qobserve(xb, (size_t)m * in, &lo[net->num_layers], &hi[net->num_layers]);
        for (k = 0; k < q->num_ops; k++) {
            const nn__qop *op = &q->ops[k];
            if (op->to_float || (op->kind != NN__QGEMM && op->kind != NN__QLUT)) continue;
            nn__qobserve(nn_layer_output(copy, op->last), (size_t)m * nn_shape_size(op->out), &lo[op->last],
                         &hi[op->last]);
        }
    }
    nn__qparams(lo[net->num_layers], hi[net->num_layers], &scale, &zp);
    q->in_scale = scale;
    q->in_zp = zp;
    for (k = 0; k < q->num_ops; k++) {
        nn__qop *op = &q->ops[k];
        op->in_scale = k ? q->ops[k - 1].out_scale : q->in_scale;
        op->in_zp = k ? q->ops[k - 1].out_zp : q->in_zp;
        op->out_scale = op->in_scale;
        op->out_zp = op->in_zp;
        if (!op->to_float && (op->kind == NN__QGEMM || op->kind == NN__QLUT))
            nn__qparams(lo[op->last], hi[op->last], &op->out_scale, &op->out_zp);
        if (nn__qop_alloc(op, "nn_quantize") != NN_OK) goto fail;
        if (op->kind == NN__QGEMM && nn__qop_weights(net, op) != NN_OK) goto fail;
    }
    if (nn__qfinish(qn, "nn_quantize") != NN_OK) goto fail;
    if (net->preprocess == NN_PREPROCESS_CHANNELS &&
        nn_set_preprocess_channels(qn, net->preprocess_scale, net->preprocess_mean, net->preprocess_std) != NN_OK)
        goto fail;
    if (net->preprocess == NN_PREPROCESS_MEAN_IMAGE && nn_set_preprocess_mean_image(qn, net->preprocess_mean) != NN_OK)
        goto fail;
    if (net->num_class_names) {
        const char **names = (const char **)nn__alloc((size_t)net->num_class_names * sizeof *names);
        nn_status st;
        if (!names) { nn__fail(NN_ERR_NOMEM, "nn_quantize: out of memory"); goto fail; }
        for (i = 0; i < net->num_class_names; i++) names[i] = nn_class_name(net, i);
        st = nn_set_class_names(qn, names, net->num_class_names);
        nn__free((void *)names);
        if (st != NN_OK) goto fail;
    }
    nn__free(lo);
    nn__free(hi);
    nn_net_free(copy);
    return qn;
fail:
    nn__free(lo);
    nn__free(hi);
    nn_net_free(copy);
    nn_net_free(qn);
    return NULL;
}

NNDEF int nn_is_quantized(const nn_net *net)
{
    nn__error_clear();
    if (!net) return nn__null_net("nn_is_quantized");
    return net->q != NULL;
}

/* ---- int8 model files ------------------------------------------------------------------
   The float net's metadata (its layer text, preprocessing, class names) plus
   "quantized": "int8" and "activation_max": "127"; the tensors, op by op (a GEMM op
   and a table op are named by their first layer's prefix):
       input.scale F32 [1], input.zero_point I32 [1]
       <prefix>.weight I8 (the float layer's shape), <prefix>.weight_scale F32 [out],
       <prefix>.bias I32 [out] (quantized at input scale x weight scale)
       <prefix>.output_scale F32 [1], <prefix>.output_zero_point I32 [1]
           (every GEMM op but the last, whose output is float, and every table op). */

static void nn__buf_put_le(nn__buf *b, const void *v, size_t n, size_t elem)
{
    size_t i, k;
    const unsigned char *p = (const unsigned char *)v;
    if (nn__little_endian() || elem == 1) { nn__buf_put(b, v, n * elem); return; }
    for (i = 0; i < n; i++)
        for (k = 0; k < elem; k++) nn__buf_put(b, p + i * elem + (elem - 1 - k), 1);
}

static void nn__qsave_qparams(nn__buf *h, nn__buf *body, size_t *offset, const char *prefix, const char *what,
                              float scale, int32_t zp)
{
    char name[NN_MAX_NAME + 32];
    int one = 1;
    snprintf(name, sizeof name, "%s.%sscale", prefix, what);
    nn__json_tensor(h, name, "F32", 1, &one, offset, 4);
    nn__buf_put_f32(body, &scale, 1);
    snprintf(name, sizeof name, "%s.%szero_point", prefix, what);
    nn__json_tensor(h, name, "I32", 1, &one, offset, 4);
    nn__buf_put_le(body, &zp, 1, 4);
}

static void nn__qsave_tensors(const nn_net *net, nn__buf *h, nn__buf *body, size_t *offset)
{
    const nn__qnet *q = net->q;
    int k, c;
    nn__qsave_qparams(h, body, offset, "input", "", q->in_scale, q->in_zp);
    for (k = 0; k < q->num_ops; k++) {
        const nn__qop *op = &q->ops[k];
        const nn_layer *L = &net->layers[op->layer];
        char pre[16], name[NN_MAX_NAME + 32];
        const char *prefix = nn__qprefix(net, op->layer, pre);
        int outs = op->rows * op->groups, shape[4];
        if (op->kind == NN__QGEMM) {
            shape[0] = outs;
            shape[1] = op->conv ? L->in.c / op->groups : op->k;
            shape[2] = L->desc.kernel_h;
            shape[3] = L->desc.kernel_w;
            snprintf(name, sizeof name, "%s.weight", prefix);
            nn__json_tensor(h, name, "I8", op->conv ? 4 : 2, shape, offset, (size_t)outs * op->k);
            for (c = 0; c < outs; c++) nn__buf_put(body, op->w + (size_t)c * op->kp, (size_t)op->k);
            snprintf(name, sizeof name, "%s.weight_scale", prefix);
            nn__json_tensor(h, name, "F32", 1, shape, offset, (size_t)outs * 4);
            nn__buf_put_f32(body, op->w_scale, (size_t)outs);
            snprintf(name, sizeof name, "%s.bias", prefix);
            nn__json_tensor(h, name, "I32", 1, shape, offset, (size_t)outs * 4);
            nn__buf_put_le(body, op->bias, (size_t)outs, 4);
        }
        if ((op->kind == NN__QGEMM && !op->to_float) || op->kind == NN__QLUT)
            nn__qsave_qparams(h, body, offset, prefix, "output_", op->out_scale, op->out_zp);
    }
}

/* Tensor name of the file: present, of dtype and shape, marked used; its bytes. */
static const unsigned char *nn__qst_get(nn__st_file *f, const char *name, const char *dtype, int ndim,
                                        const int *shape, size_t count, size_t elem)
{
    nn__st_tensor *t = nn__st_find(f, name);
    int d;
    if (!t) { nn__fail(NN_ERR_FORMAT, "model: tensor '%s' is missing", name); return NULL; }
    if (strcmp(t->dtype, dtype)) {
        nn__fail(NN_ERR_FORMAT, "model: tensor '%s' has dtype %s, expected %s", name, t->dtype, dtype);
        return NULL;
    }
    for (d = 0; d < ndim && t->ndim == ndim; d++) if (t->shape[d] != (uint64_t)shape[d]) break;
    if (t->ndim != ndim || d < ndim || t->end - t->begin != (uint64_t)count * elem) {
        nn__fail(NN_ERR_FORMAT, "model: tensor '%s' has %d dimensions and %llu bytes, expected %d dimensions "
                 "[%d, ...] and %zu bytes", name, t->ndim, (unsigned long long)(t->end - t->begin), ndim,
                 shape[0], count * elem);
        return NULL;
    }
    t->used = 1;
    return f->data + t->begin;
}

static int32_t nn__le_i32(const unsigned char *b)
{
    return (int32_t)((uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24);
}

/* A scale (finite, > 0) and a zero point (0..NN__QMAX) named prefix.<what>scale ... */
static nn_status nn__qload_qparams(nn__st_file *f, const char *prefix, const char *what, float *scale, int *zp)
{
    char name[NN_MAX_NAME + 32];
    const unsigned char *p;
    int one = 1;
    int32_t z;
    snprintf(name, sizeof name, "%s.%sscale", prefix, what);
    if (!(p = nn__qst_get(f, name, "F32", 1, &one, 1, 4))) return NN_ERR_FORMAT;
    *scale = nn__le_f32(p);
    if (!(*scale > 0.0f) || !isfinite(*scale))
        return nn__fail(NN_ERR_FORMAT, "model: tensor '%s' holds %g, expected a finite scale > 0", name, *scale);
    snprintf(name, sizeof name, "%s.%szero_point", prefix, what);
    if (!(p = nn__qst_get(f, name, "I32", 1, &one, 1, 4))) return NN_ERR_FORMAT;
    z = nn__le_i32(p);
    if (z < 0 || z > NN__QMAX)
        return nn__fail(NN_ERR_FORMAT, "model: tensor '%s' holds %ld, expected 0 to %d", name, (long)z, NN__QMAX);
    *zp = (int)z;
    return NN_OK;
}

/* Reads an int8 net into net, whose layers the loader added from the file's layer
   text: every tensor checked (dtype, shape, each weight in -127..127, each scale finite
   and > 0, each zero point in 0..127, each bias within +-2^30) before its arrays are
   allocated, no tensor left over. */
static nn_status nn__qload(nn_net *net, nn__st_file *f, int max_batch)
{
    const char *kind = nn__st_meta(f, "quantized"), *top = nn__st_meta(f, "activation_max");
    const unsigned char **wp = NULL;
    nn__qnet *q;
    nn_status st;
    int k, c;
    size_t i;
    if (strcmp(kind, "int8") || !top || strcmp(top, "127"))
        return nn__fail(NN_ERR_FORMAT, "model: quantized '%s' with activation_max '%s'; this nn.h reads int8 "
                        "with activation_max 127", kind, top ? top : "(none)");
    if ((st = nn__qshell(net, max_batch, "model")) != NN_OK) return st;
    q = net->q;
    for (k = 0; k < f->num_tensors; k++) f->tensors[k].used = 0;
    if ((st = nn__qload_qparams(f, "input", "", &q->in_scale, &q->in_zp)) != NN_OK) return st;
    if (!(wp = (const unsigned char **)nn__calloc((size_t)q->num_ops * 3, sizeof *wp)))
        return nn__fail(NN_ERR_NOMEM, "model: out of memory");
    for (k = 0; k < q->num_ops; k++) {   /* every tensor checked, nothing allocated */
        nn__qop *op = &q->ops[k];
        const nn_layer *L = &net->layers[op->layer];
        char pre[16], name[NN_MAX_NAME + 32];
        const char *prefix = nn__qprefix(net, op->layer, pre);
        int outs = op->rows * op->groups, shape[4];
        op->in_scale = k ? q->ops[k - 1].out_scale : q->in_scale;
        op->in_zp = k ? q->ops[k - 1].out_zp : q->in_zp;
        op->out_scale = op->in_scale;
        op->out_zp = op->in_zp;
        if ((op->kind == NN__QGEMM && !op->to_float) || op->kind == NN__QLUT)
            if ((st = nn__qload_qparams(f, prefix, "output_", &op->out_scale, &op->out_zp)) != NN_OK) goto done;
        if (op->kind != NN__QGEMM) continue;
        shape[0] = outs;
        shape[1] = op->conv ? L->in.c / op->groups : op->k;
        shape[2] = L->desc.kernel_h;
        shape[3] = L->desc.kernel_w;
        snprintf(name, sizeof name, "%s.weight", prefix);
        st = NN_ERR_FORMAT;
        if (!(wp[3 * k] = nn__qst_get(f, name, "I8", op->conv ? 4 : 2, shape, (size_t)outs * op->k, 1))) goto done;
        for (i = 0; i < (size_t)outs * op->k; i++)
            if (wp[3 * k][i] == 0x80) {
                st = nn__fail(NN_ERR_FORMAT, "model: tensor '%s' holds -128 at index %zu, expected -127 to 127",
                              name, i);
                goto done;
            }
        snprintf(name, sizeof name, "%s.weight_scale", prefix);
        if (!(wp[3 * k + 1] = nn__qst_get(f, name, "F32", 1, shape, (size_t)outs, 4))) goto done;
        for (c = 0; c < outs; c++) {
            float s = nn__le_f32(wp[3 * k + 1] + 4 * c);
            if (!(s > 0.0f) || !isfinite(s)) {
                st = nn__fail(NN_ERR_FORMAT, "model: tensor '%s' holds %g at index %d, expected a finite scale "
                              "> 0", name, s, c);
                goto done;
            }
        }
        snprintf(name, sizeof name, "%s.bias", prefix);
        if (!(wp[3 * k + 2] = nn__qst_get(f, name, "I32", 1, shape, (size_t)outs, 4))) goto done;
        for (c = 0; c < outs; c++) {
            int32_t b = nn__le_i32(wp[3 * k + 2] + 4 * c);
            if (b < -(int32_t)NN__QBIAS_MAX || b > (int32_t)NN__QBIAS_MAX) {
                st = nn__fail(NN_ERR_FORMAT, "model: tensor '%s' holds %ld at index %d, expected within +-2^30",
                              name, (long)b, c);
                goto done;
            }
        }
    }
    for (k = 0; k < f->num_tensors; k++)
        if (!f->tensors[k].used) {
            st = nn__fail(NN_ERR_FORMAT, "model: tensor '%s' does not belong to this int8 net", f->tensors[k].name);
            goto done;
        }
    for (k = 0; k < q->num_ops; k++) {   /* then copied */
        nn__qop *op = &q->ops[k];
        int outs = op->rows * op->groups;
        if ((st = nn__qop_alloc(op, "model")) != NN_OK) goto done;
        if (op->kind != NN__QGEMM) continue;
        for (c = 0; c < outs; c++) {
            memcpy(op->w + (size_t)c * op->kp, wp[3 * k] + (size_t)c * op->k, (size_t)op->k);
            op->w_scale[c] = nn__le_f32(wp[3 * k + 1] + 4 * c);
            op->bias[c] = nn__le_i32(wp[3 * k + 2] + 4 * c);
        }
    }
    st = nn__qfinish(net, "model");
done:
    nn__free((void *)wp);
    return st;
}

/* =================================================================================
   ONNX
   ================================================================================= */

#ifndef NN_NO_ONNX

/* ---- Protocol buffers: reading the wire format ---- */

/* Protocol buffers carry every ONNX message as fields: a varint key (field number << 3
   | wire type) then the value: 0 a varint (at most 10 bytes), 1 eight bytes, 2 a varint
   length and that many bytes (strings, bytes, nested messages, packed repeated
   numbers), 5 four bytes; 3 and 4 open and close a group (deprecated, skipped). The
   reader points into the file and copies nothing but numbers: every length is checked
   against the end of its message, nesting is bounded, and an array is allocated only
   after its elements were counted in bytes that are there. */

#define NN__OX_MAX_DIMS 8       /* dimensions of a tensor or a value */
#define NN__OX_MAX_VALUES 16    /* numbers of a repeated attribute (pads, strides, ...) */
#define NN__PB_MAX_DEPTH 32     /* nested groups skipped */

typedef struct nn__pb_field {
    uint32_t num;
    int wire;
    uint64_t v;                  /* wire 0, 1, 5: the number */
    const unsigned char *p;      /* wire 2: the bytes */
    size_t n;
} nn__pb_field;

static int nn__pb_varint(const unsigned char **p, const unsigned char *end, uint64_t *v)
{
    uint64_t x = 0;
    int i;
    for (i = 0; i < 10 && *p < end; i++) {
        unsigned b = *(*p)++;
        if (i == 9 && b > 1) return 0;      /* more than 64 bits */
        x |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) { *v = x; return 1; }
    }
    return 0;
}

static uint64_t nn__le_u(const unsigned char *b, int n)
{
    uint64_t x = 0;
    while (n--) x = x << 8 | b[n];
    return x;
}

/* The value of a field of wire type `wire` at *p, skipped or read into f. */
static int nn__pb_value(const unsigned char **p, const unsigned char *end, int wire, nn__pb_field *f)
{
    uint64_t len;
    switch (wire) {
    case 0: return nn__pb_varint(p, end, &f->v);
    case 1: case 5: {
        int n = wire == 1 ? 8 : 4;
        if (end - *p < n) return 0;
        f->v = nn__le_u(*p, n);
        *p += n;
        return 1;
    }
    case 2:
        if (!nn__pb_varint(p, end, &len) || len > (uint64_t)(end - *p)) return 0;
        f->p = *p;
        f->n = (size_t)len;
        *p += len;
        return 1;
    }
    return 0;
}

/* The next field at *p (which is before end); 0 for damaged bytes. A group is skipped
   whole (then f->num is 0, a number no message uses), its nesting bounded by
   NN__PB_MAX_DEPTH, each end matching its start. */
static int nn__pb_next(const unsigned char **p, const unsigned char *end, nn__pb_field *f)
{
    uint64_t key;
    uint32_t open[NN__PB_MAX_DEPTH];
    int depth = 0;
    memset(f, 0, sizeof *f);
    for (;;) {
        uint32_t num;
        int wire;
        if (!nn__pb_varint(p, end, &key) || key >> 3 == 0 || key >> 3 > 0x1fffffff) return 0;
        num = (uint32_t)(key >> 3);
        wire = (int)(key & 7);
        if (wire == 3) {
            if (depth == NN__PB_MAX_DEPTH) return 0;
            open[depth++] = num;
            continue;
        }
        if (wire == 4) {
            if (!depth || open[--depth] != num) return 0;
        } else if (!nn__pb_value(p, end, wire, f)) {
            return 0;
        }
        if (!depth) {
            if (wire == 4) memset(f, 0, sizeof *f);
            else { f->num = num; f->wire = wire; }
            return 1;
        }
    }
}

/* Fields numbered num in a message: how many, or -1 if it is damaged. */
static long nn__pb_count(const unsigned char *p, size_t n, uint32_t num)
{
    const unsigned char *end = p + n;
    nn__pb_field f;
    long count = 0;
    while (p < end) {
        if (!nn__pb_next(&p, end, &f)) return -1;
        count += f.num == num;
    }
    return count;
}

/* Appends the integers of a repeated int64 / int32 field (packed or not) to out;
   0 for damaged bytes or more than max values. */
static int nn__pb_ints(const nn__pb_field *f, int64_t *out, size_t *count, size_t max)
{
    if (f->wire == 0) {
        if (*count >= max) return 0;
        out[(*count)++] = (int64_t)f->v;
        return 1;
    }
    if (f->wire == 2) {
        const unsigned char *p = f->p, *end = f->p + f->n;
        uint64_t v;
        while (p < end) {
            if (*count >= max || !nn__pb_varint(&p, end, &v)) return 0;
            out[(*count)++] = (int64_t)v;
        }
        return 1;
    }
    return 0;
}

static float nn__f32_bits(uint32_t u)
{
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* Appends the floats of a repeated float field (packed or not). */
static int nn__pb_floats(const nn__pb_field *f, float *out, size_t *count, size_t max)
{
    size_t k;
    if (f->wire == 5) {
        if (*count >= max) return 0;
        out[(*count)++] = nn__f32_bits((uint32_t)f->v);
        return 1;
    }
    if (f->wire != 2 || f->n % 4 || f->n / 4 > max - *count) return 0;
    for (k = 0; k < f->n; k += 4) out[(*count)++] = nn__f32_bits((uint32_t)nn__le_u(f->p + k, 4));
    return 1;
}

/* Values of a repeated numeric field of wire type 0 (or 5 when fixed32) held by f. */
static size_t nn__pb_run(const nn__pb_field *f, int fixed32)
{
    size_t k, n = 0;
    if (f->wire != 2) return 1;
    if (fixed32) return f->n / 4;
    for (k = 0; k < f->n; k++) n += f->p[k] < 0x80;   /* each varint ends in a byte < 0x80 */
    return n;
}

/* ---- The ONNX messages (onnx.proto3): only the fields nn.h reads ---- */

typedef struct nn__ox_str { const char *p; size_t n; } nn__ox_str;

enum { NN__OX_FLOAT = 1, NN__OX_INT32 = 6, NN__OX_INT64 = 7 };   /* TensorProto.DataType */
enum { NN__OX_A_FLOAT = 1, NN__OX_A_INT, NN__OX_A_STRING, NN__OX_A_TENSOR, NN__OX_A_GRAPH,
       NN__OX_A_FLOATS, NN__OX_A_INTS };                          /* AttributeProto.type */

typedef struct nn__ox_tensor {
    nn__ox_str name;
    int dtype, ndim;
    int64_t dims[NN__OX_MAX_DIMS];
    size_t count;
    float *f;                    /* FLOAT: the values */
    int64_t *i;                  /* INT64, INT32: the values; both NULL for another type */
} nn__ox_tensor;

typedef struct nn__ox_attr {
    nn__ox_str name, s;
    int type;
    float f;
    int64_t i;
    nn__ox_tensor *t;
    size_t nfloats, nints;
    float floats[NN__OX_MAX_VALUES];
    int64_t ints[NN__OX_MAX_VALUES];
} nn__ox_attr;

typedef struct nn__ox_node {
    nn__ox_str name, op, domain;
    nn__ox_str *in, *out;
    nn__ox_attr *attr;
    int nin, nout, nattr;
} nn__ox_node;

typedef struct nn__ox_vi {          /* ValueInfoProto of a graph input or output */
    nn__ox_str name;
    int elem, ndim, has_shape;
    int64_t dims[NN__OX_MAX_DIMS];  /* -1: symbolic (dim_param) or unknown */
} nn__ox_vi;

/* One allocation of the import, linked to the others (freed together). */
typedef struct nn__ox_block { struct nn__ox_block *next; } nn__ox_block;

typedef struct nn__ox {
    nn__ox_block *blocks;
    size_t bytes, limit;            /* allocated so far (with the blocks' headers), and the
                                       most: 64 per byte of the file + 16 MiB, at most
                                       NN_MAX_BUILD_BYTES (0: that) */
    int64_t opset;                  /* of the default domain */
    nn__ox_node *nodes;
    nn__ox_tensor *inits;
    nn__ox_vi *inputs, *outputs;
    int nnodes, ninits, ninputs, noutputs;
} nn__ox;

#define NN__OX_STR(s) (int)((s).n < 80 ? (s).n : 80), (s).p   /* for "%.*s" */

/* count elements of elem bytes, zeroed; no elements cost nothing. */
static void *nn__ox_alloc(nn__ox *ox, size_t count, size_t elem)
{
    static double none;
    size_t bytes, limit = ox->limit ? ox->limit : (size_t)NN_MAX_BUILD_BYTES;
    nn__ox_block *b;
    if (!count || !elem) return &none;
    if (!nn__mul_ok(count, elem, &bytes) || bytes > SIZE_MAX - NN__ALIGN || bytes + NN__ALIGN > limit - ox->bytes) {
        nn__fail(NN_ERR_NOMEM, "onnx: reading the model would take more than %zu bytes (64 per byte of the "
                 "file and 16 MiB, at most NN_MAX_BUILD_BYTES)", limit);
        return NULL;
    }
    if (!(b = (nn__ox_block *)nn__calloc(1, bytes + NN__ALIGN))) {
        nn__fail(NN_ERR_NOMEM, "onnx: out of memory");
        return NULL;
    }
    ox->bytes += bytes + NN__ALIGN;
    b->next = ox->blocks;
    ox->blocks = b;
    return (unsigned char *)b + NN__ALIGN;
}

static void nn__ox_free(nn__ox *ox)
{
    while (ox->blocks) {
        nn__ox_block *next = ox->blocks->next;
        nn__free(ox->blocks);
        ox->blocks = next;
    }
}

static nn_status nn__ox_damaged(const char *what)
{
    return nn__fail(NN_ERR_FORMAT, "onnx: damaged file: a field of %s runs past its end or "
                    "is not protobuf", what);
}

static int nn__ox_str_is(nn__ox_str s, const char *text)
{
    return s.n == strlen(text) && !memcmp(s.p, text, s.n);
}

static int nn__ox_str_eq(nn__ox_str a, nn__ox_str b) { return a.n == b.n && (!a.n || !memcmp(a.p, b.p, a.n)); }

static nn__ox_str nn__ox_bytes(const nn__pb_field *f)
{
    nn__ox_str s;
    s.p = (const char *)f->p;
    s.n = f->n;
    return s;
}

/* TensorProto: dims 1, data_type 2, float_data 4, int32_data 5, int64_data 7, name 8,
   raw_data 9, data_location 14 (external data: refused). Two passes: the first counts
   the values the bytes hold, the second copies them once the count matches the dims. */
static nn_status nn__ox_tensor_parse(nn__ox *ox, const unsigned char *p, size_t n, nn__ox_tensor *t)
{
    const unsigned char *q = p, *end = p + n;
    nn__pb_field f;
    const unsigned char *raw = NULL;
    size_t raw_n = 0, nf = 0, ni = 0, ndims = 0, k, got = 0, elem;
    int64_t dims[NN__OX_MAX_DIMS];
    int external = 0, fields32 = 0, fields64 = 0;
    memset(t, 0, sizeof *t);
    while (q < end) {
        if (!nn__pb_next(&q, end, &f)) return nn__ox_damaged("a tensor");
        switch (f.num) {
        case 1:
            if (!nn__pb_ints(&f, dims, &ndims, NN__OX_MAX_DIMS))
                return nn__fail(NN_ERR_FORMAT, "onnx: a tensor has more than %d dimensions or damaged "
                                "dims", NN__OX_MAX_DIMS);
            break;
        case 2: if (f.wire == 0) t->dtype = (int)f.v; break;
        case 4: if (f.wire != 0 && f.wire != 1) nf += nn__pb_run(&f, 1); break;
        case 5: if (f.wire == 0 || f.wire == 2) { ni += nn__pb_run(&f, 0); fields32 = 1; } break;
        case 7: if (f.wire == 0 || f.wire == 2) { ni += nn__pb_run(&f, 0); fields64 = 1; } break;
        case 8: if (f.wire == 2) t->name = nn__ox_bytes(&f); break;
        case 9: if (f.wire == 2) { raw = f.p; raw_n = f.n; } break;
        case 14: external = f.wire == 0 && f.v == 1; break;
        }
    }
    if (external)
        return nn__fail(NN_ERR_FORMAT, "onnx: tensor '%.*s' keeps its data in an external file "
                        "(not supported: save the model with its weights inside)", NN__OX_STR(t->name));
    t->ndim = (int)ndims;
    t->count = 1;
    for (k = 0; k < ndims; k++) {
        if (dims[k] < 0 || dims[k] > INT_MAX || !nn__mul_ok(t->count, (size_t)dims[k], &t->count))
            return nn__fail(NN_ERR_FORMAT, "onnx: tensor '%.*s': dimension %zu is %lld",
                            NN__OX_STR(t->name), k, (long long)dims[k]);
        t->dims[k] = dims[k];
    }
    if (t->dtype == NN__OX_FLOAT) elem = 4;
    else if (t->dtype == NN__OX_INT64 && !fields32) elem = 8;
    else if (t->dtype == NN__OX_INT32 && !fields64) elem = 4;
    else return NN_OK;   /* another type: refused where it is used */
    got = raw ? raw_n / elem : t->dtype == NN__OX_FLOAT ? nf : ni;
    if ((raw && (raw_n % elem || nf || ni)) || got != t->count)
        return nn__fail(NN_ERR_FORMAT, "onnx: tensor '%.*s' holds %zu values of %zu bytes where "
                        "its dims say %zu", NN__OX_STR(t->name), raw ? raw_n / elem : got, elem, t->count);
    if (t->dtype == NN__OX_FLOAT) {
        if (!(t->f = (float *)nn__ox_alloc(ox, t->count, sizeof(float)))) return NN_ERR_NOMEM;
    } else if (!(t->i = (int64_t *)nn__ox_alloc(ox, t->count, sizeof(int64_t)))) {
        return NN_ERR_NOMEM;
    }
    if (raw) {
        for (k = 0; k < t->count; k++) {
            uint64_t u = nn__le_u(raw + k * elem, (int)elem);
            if (t->f) t->f[k] = nn__f32_bits((uint32_t)u);
            else t->i[k] = elem == 8 ? (int64_t)u : (int64_t)(int32_t)(uint32_t)u;
        }
        return NN_OK;
    }
    for (q = p, got = 0; q < end;) {
        nn__pb_next(&q, end, &f);   /* the first pass checked every field */
        if (t->f && f.num == 4 && f.wire != 0 && f.wire != 1) {
            if (!nn__pb_floats(&f, t->f, &got, t->count)) return nn__ox_damaged("float_data");
        } else if (t->i && (f.num == 5 || f.num == 7) && (f.wire == 0 || f.wire == 2)) {
            size_t from = got;
            if (!nn__pb_ints(&f, t->i, &got, t->count)) return nn__ox_damaged("int64_data");
            if (f.num == 5)
                for (k = from; k < got; k++) t->i[k] = (int32_t)(uint32_t)(uint64_t)t->i[k];
        }
    }
    if (got != t->count) return nn__ox_damaged("a tensor's data");
    return NN_OK;
}

/* AttributeProto: name 1, f 2, i 3, s 4, t 5, g 6, floats 7, ints 8, type 20. */
static nn_status nn__ox_attr_parse(nn__ox *ox, const unsigned char *p, size_t n, nn__ox_attr *a)
{
    const unsigned char *end = p + n;
    nn__pb_field f;
    int seen = 0;
    nn_status st;
    memset(a, 0, sizeof *a);
    while (p < end) {
        if (!nn__pb_next(&p, end, &f)) return nn__ox_damaged("an attribute");
        switch (f.num) {
        case 1: if (f.wire == 2) a->name = nn__ox_bytes(&f); break;
        case 2: if (f.wire == 5) { a->f = nn__f32_bits((uint32_t)f.v); seen = NN__OX_A_FLOAT; } break;
        case 3: if (f.wire == 0) { a->i = (int64_t)f.v; seen = NN__OX_A_INT; } break;
        case 4: if (f.wire == 2) { a->s = nn__ox_bytes(&f); seen = NN__OX_A_STRING; } break;
        case 5:
            if (f.wire != 2) break;
            if (!(a->t = (nn__ox_tensor *)nn__ox_alloc(ox, 1, sizeof *a->t))) return NN_ERR_NOMEM;
            if ((st = nn__ox_tensor_parse(ox, f.p, f.n, a->t)) != NN_OK) return st;
            seen = NN__OX_A_TENSOR;
            break;
        case 6: seen = NN__OX_A_GRAPH; break;
        case 7:
            if ((f.wire != 2 && f.wire != 5) || !nn__pb_floats(&f, a->floats, &a->nfloats, NN__OX_MAX_VALUES))
                return nn__fail(NN_ERR_FORMAT, "onnx: attribute '%.*s' holds more than %d floats or is "
                                "damaged", NN__OX_STR(a->name), NN__OX_MAX_VALUES);
            seen = NN__OX_A_FLOATS;
            break;
        case 8:
            if ((f.wire != 2 && f.wire != 0) || !nn__pb_ints(&f, a->ints, &a->nints, NN__OX_MAX_VALUES))
                return nn__fail(NN_ERR_FORMAT, "onnx: attribute '%.*s' holds more than %d integers or is "
                                "damaged", NN__OX_STR(a->name), NN__OX_MAX_VALUES);
            seen = NN__OX_A_INTS;
            break;
        case 20: if (f.wire == 0) a->type = (int)f.v; break;
        }
    }
    if (!a->type) a->type = seen;   /* files older than the type field */
    return NN_OK;
}

/* A repeated string field into an array counted first. */
static nn_status nn__ox_strings(nn__ox *ox, const unsigned char *p, size_t n, uint32_t num,
                                nn__ox_str **out, int *count, const char *what)
{
    const unsigned char *end = p + n;
    nn__pb_field f;
    long c = nn__pb_count(p, n, num);
    if (c < 0) return nn__ox_damaged(what);
    if (!(*out = (nn__ox_str *)nn__ox_alloc(ox, (size_t)c, sizeof **out))) return NN_ERR_NOMEM;
    *count = 0;
    while (p < end) {
        nn__pb_next(&p, end, &f);
        if (f.num != num) continue;
        if (f.wire != 2) return nn__ox_damaged(what);
        (*out)[(*count)++] = nn__ox_bytes(&f);
    }
    return NN_OK;
}

/* NodeProto: input 1, output 2, name 3, op_type 4, attribute 5, domain 7. */
static nn_status nn__ox_node_parse(nn__ox *ox, const unsigned char *p, size_t n, nn__ox_node *node)
{
    const unsigned char *q = p, *end = p + n;
    nn__pb_field f;
    long na = nn__pb_count(p, n, 5);
    nn_status st;
    memset(node, 0, sizeof *node);
    if (na < 0) return nn__ox_damaged("a node");
    if ((st = nn__ox_strings(ox, p, n, 1, &node->in, &node->nin, "a node")) != NN_OK ||
        (st = nn__ox_strings(ox, p, n, 2, &node->out, &node->nout, "a node")) != NN_OK)
        return st;
    if (!(node->attr = (nn__ox_attr *)nn__ox_alloc(ox, (size_t)na, sizeof *node->attr))) return NN_ERR_NOMEM;
    while (q < end) {
        nn__pb_next(&q, end, &f);
        if (f.wire != 2) continue;
        if (f.num == 3) node->name = nn__ox_bytes(&f);
        else if (f.num == 4) node->op = nn__ox_bytes(&f);
        else if (f.num == 7) node->domain = nn__ox_bytes(&f);
        else if (f.num == 5 && (st = nn__ox_attr_parse(ox, f.p, f.n, &node->attr[node->nattr++])) != NN_OK)
            return st;
    }
    return NN_OK;
}

/* ValueInfoProto: name 1, type 2 -> TypeProto: tensor_type 1 -> elem_type 1, shape 2 ->
   TensorShapeProto: dim 1 -> dim_value 1 (or dim_param 2: symbolic). */
static nn_status nn__ox_vi_parse(const unsigned char *p, size_t n, nn__ox_vi *vi)
{
    const unsigned char *end = p + n, *tp = NULL, *tend = NULL;
    nn__pb_field f;
    memset(vi, 0, sizeof *vi);
    while (p < end) {
        if (!nn__pb_next(&p, end, &f)) return nn__ox_damaged("a graph input or output");
        if (f.num == 1 && f.wire == 2) vi->name = nn__ox_bytes(&f);
        if (f.num == 2 && f.wire == 2) { tp = f.p; tend = f.p + f.n; }
    }
    while (tp && tp < tend) {          /* TypeProto */
        if (!nn__pb_next(&tp, tend, &f)) return nn__ox_damaged("a type");
        if (f.num == 1 && f.wire == 2) {
            const unsigned char *q = f.p, *qend = f.p + f.n;
            while (q < qend) {         /* TypeProto.Tensor */
                nn__pb_field g;
                if (!nn__pb_next(&q, qend, &g)) return nn__ox_damaged("a tensor type");
                if (g.num == 1 && g.wire == 0) vi->elem = (int)g.v;
                if (g.num == 2 && g.wire == 2) {
                    const unsigned char *s = g.p, *send = g.p + g.n;
                    vi->has_shape = 1;
                    while (s < send) { /* TensorShapeProto */
                        nn__pb_field d;
                        if (!nn__pb_next(&s, send, &d)) return nn__ox_damaged("a shape");
                        if (d.num != 1 || d.wire != 2) continue;
                        if (vi->ndim == NN__OX_MAX_DIMS)
                            return nn__fail(NN_ERR_FORMAT, "onnx: value '%.*s' has more than %d dimensions",
                                            NN__OX_STR(vi->name), NN__OX_MAX_DIMS);
                        vi->dims[vi->ndim] = -1;
                        {
                            const unsigned char *e = d.p, *eend = d.p + d.n;
                            while (e < eend) {
                                nn__pb_field v;
                                if (!nn__pb_next(&e, eend, &v)) return nn__ox_damaged("a dimension");
                                if (v.num == 1 && v.wire == 0 && (int64_t)v.v >= 0) vi->dims[vi->ndim] = (int64_t)v.v;
                            }
                        }
                        vi->ndim++;
                    }
                }
            }
        }
    }
    return NN_OK;
}

/* GraphProto: node 1, initializer 5, input 11, output 12 (value_info and the rest are
   skipped). */
static nn_status nn__ox_graph_parse(nn__ox *ox, const unsigned char *p, size_t n)
{
    const unsigned char *end = p + n;
    nn__pb_field f;
    long c1 = nn__pb_count(p, n, 1), c5 = nn__pb_count(p, n, 5), c11 = nn__pb_count(p, n, 11),
         c12 = nn__pb_count(p, n, 12);
    nn_status st = NN_OK;
    if (c1 < 0 || c5 < 0 || c11 < 0 || c12 < 0) return nn__ox_damaged("the graph");
    if (c1 > INT_MAX / 2 || c5 > INT_MAX / 2 || c11 > INT_MAX / 2 || c12 > INT_MAX / 2)
        return nn__fail(NN_ERR_FORMAT, "onnx: the graph has too many nodes or values");
    if (!(ox->nodes = (nn__ox_node *)nn__ox_alloc(ox, (size_t)c1 + 1, sizeof *ox->nodes)) ||
        !(ox->inits = (nn__ox_tensor *)nn__ox_alloc(ox, (size_t)c5 + 1, sizeof *ox->inits)) ||
        !(ox->inputs = (nn__ox_vi *)nn__ox_alloc(ox, (size_t)c11 + 1, sizeof *ox->inputs)) ||
        !(ox->outputs = (nn__ox_vi *)nn__ox_alloc(ox, (size_t)c12 + 1, sizeof *ox->outputs)))
        return NN_ERR_NOMEM;
    while (p < end && st == NN_OK) {
        nn__pb_next(&p, end, &f);
        if (f.wire != 2) continue;
        if (f.num == 1) st = nn__ox_node_parse(ox, f.p, f.n, &ox->nodes[ox->nnodes++]);
        else if (f.num == 5) st = nn__ox_tensor_parse(ox, f.p, f.n, &ox->inits[ox->ninits++]);
        else if (f.num == 11) st = nn__ox_vi_parse(f.p, f.n, &ox->inputs[ox->ninputs++]);
        else if (f.num == 12) st = nn__ox_vi_parse(f.p, f.n, &ox->outputs[ox->noutputs++]);
    }
    return st;
}

/* ModelProto: ir_version 1, graph 7, opset_import 8 -> OperatorSetIdProto: domain 1,
   version 2. */
static nn_status nn__ox_parse(nn__ox *ox, const void *data, size_t size)
{
    const unsigned char *p = (const unsigned char *)data, *end = p + size, *graph = NULL;
    size_t graph_n = 0;
    nn__pb_field f;
    int has_ir = 0;
    memset(ox, 0, sizeof *ox);
    ox->opset = -1;
    ox->limit = size < ((size_t)NN_MAX_BUILD_BYTES - ((size_t)16 << 20)) / 64 ? 64 * size + ((size_t)16 << 20)
                                                                          : (size_t)NN_MAX_BUILD_BYTES;
    while (p < end) {
        if (!nn__pb_next(&p, end, &f)) return nn__ox_damaged("the model");
        if (f.num == 1 && f.wire == 0) has_ir = 1;
        if (f.num == 7 && f.wire == 2) { graph = f.p; graph_n = f.n; }
        if (f.num == 8 && f.wire == 2) {
            const unsigned char *q = f.p, *qend = f.p + f.n;
            nn__ox_str domain = { "", 0 };
            int64_t version = -1;
            while (q < qend) {
                nn__pb_field g;
                if (!nn__pb_next(&q, qend, &g)) return nn__ox_damaged("an opset");
                if (g.num == 1 && g.wire == 2) domain = nn__ox_bytes(&g);
                if (g.num == 2 && g.wire == 0) version = (int64_t)g.v;
            }
            if (domain.n == 0 || nn__ox_str_is(domain, "ai.onnx")) ox->opset = version;
        }
    }
    if (!has_ir || !graph)
        return nn__fail(NN_ERR_FORMAT, "onnx: not an ONNX model (no %s)", has_ir ? "graph" : "ir_version");
    if (ox->opset < 1 || ox->opset > 20)
        return nn__fail(NN_ERR_FORMAT, "onnx: opset %lld of the default domain, expected 1 to 20 "
                        "(models of opsets 11 to 17 are tested)", (long long)ox->opset);
    return nn__ox_graph_parse(ox, graph, graph_n);
}

/* ---- Reading an ONNX model into a net ---- */

/* The graph becomes an nn.h net in five steps: every value gets a name table entry;
   the nodes are put in topological order (a node reading a value nothing produces,
   a value produced twice or a cycle is an error); one pass in that order evaluates what
   is constant (initializers, Constant nodes, Shape of the known input shape and the
   Gather / Unsqueeze / Squeeze / Concat / Cast chains PyTorch builds on it) and infers
   the shape of every value computed from the input; a walk from the input along the
   computed values emits the layers, a value read by two nodes opening a residual block
   that the Add joining its two paths closes (or one layer whose nodes fork and join:
   GELU exact or tanh, Softplus with its threshold); then the net is built and the
   weights copied in. */

#define NN__OX_BATCH (INT64_MIN / 2)   /* a symbolic batch size inside shape constants */
#define NN__OX_MAX_FOLD 64             /* values of a constant computed by folding */
#define NN__OX_MAX_NEST 64             /* residual blocks inside one another */

enum { NN__OX_UNSET = 0, NN__OX_CONST, NN__OX_DYN };

typedef struct nn__ox_val {
    nn__ox_str name;
    int producer;                      /* node index; -1 for the input or a constant */
    int kind;
    const nn__ox_tensor *t;            /* NN__OX_CONST */
    int rank;                          /* NN__OX_DYN: rank and dims (d[0] the batch) */
    int64_t d[4];
    int ncons, *cons;                  /* the computing nodes that read it */
    int nread;                         /* nodes (and graph outputs) that read it */
    int join;                          /* a fork's joining node once found; -1 unknown */
    int start[2], end[2];              /* and its two paths: first node (-1: none), last value */
} nn__ox_val;

/* The name table: the values sorted by name, searched by halving. */
typedef struct nn__ox_key { nn__ox_str name; int id; } nn__ox_key;

typedef struct nn__ox_layer {
    nn_layer_desc desc;
    char name[NN_MAX_NAME];            /* "" for the index */
    const float *w, *b, *rm, *rv;      /* copied into the built layer */
    size_t nw, nb, nr;
} nn__ox_layer;

typedef struct nn__ox_ctx {
    nn__ox ox;
    nn__ox_val *vals;
    int nvals, input, output;
    int **in;                          /* per node: value of each input, -1 for "" */
    int *out0, *dyn, *order;           /* per node: output 0, computes on the input, topo */
    int64_t batch;                     /* d[0] of the input: its size or NN__OX_BATCH */
    nn_layer_desc *descs;              /* per node: its layer, where it is one */
    int64_t (*pads)[4];                /* per Pad node: top, left, bottom, right */
    int *fused;                        /* per node: taken into the next (a Pad) */
    nn__ox_key *keys;
    nn__ox_layer *layers;
    int nlayers, cap;
} nn__ox_ctx;

static nn_status nn__ox_node_fail(nn__ox_ctx *c, int k, nn_status st, const char *fmt, ...)
{
    char why[320];
    va_list ap;
    const nn__ox_node *n = &c->ox.nodes[k];
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    return nn__fail(st, "onnx: node %d '%.*s' (%.*s): %s", k, NN__OX_STR(n->name), NN__OX_STR(n->op), why);
}

static const nn__ox_attr *nn__ox_attr_get(const nn__ox_node *n, const char *name)
{
    int a;
    for (a = n->nattr - 1; a >= 0; a--)
        if (nn__ox_str_is(n->attr[a].name, name)) return &n->attr[a];
    return NULL;
}

static int64_t nn__ox_attr_int(const nn__ox_node *n, const char *name, int64_t def)
{
    const nn__ox_attr *a = nn__ox_attr_get(n, name);
    return a ? a->i : def;
}

static float nn__ox_attr_float(const nn__ox_node *n, const char *name, float def)
{
    const nn__ox_attr *a = nn__ox_attr_get(n, name);
    return a ? a->f : def;
}

/* Input j of node k as a value (NULL when absent or ""). */
static nn__ox_val *nn__ox_in(nn__ox_ctx *c, int k, int j)
{
    return j < c->ox.nodes[k].nin && c->in[k][j] >= 0 ? &c->vals[c->in[k][j]] : NULL;
}

static const nn__ox_tensor *nn__ox_const_in(nn__ox_ctx *c, int k, int j)
{
    nn__ox_val *v = nn__ox_in(c, k, j);
    return v && v->kind == NN__OX_CONST ? v->t : NULL;
}

/* A float or integer constant of one value (any rank). */
static int nn__ox_scalar(const nn__ox_tensor *t, double *x)
{
    if (!t || t->count != 1 || (!t->f && !t->i)) return 0;
    *x = t->f ? (double)t->f[0] : (double)t->i[0];
    return 1;
}

static int nn__ox_key_cmp(const void *a, const void *b)
{
    const nn__ox_key *x = (const nn__ox_key *)a, *y = (const nn__ox_key *)b;
    size_t n = x->name.n < y->name.n ? x->name.n : y->name.n;
    int r = n ? memcmp(x->name.p, y->name.p, n) : 0;
    if (r) return r;
    return x->name.n < y->name.n ? -1 : x->name.n > y->name.n;
}

static int nn__ox_find(const nn__ox_key *keys, int n, nn__ox_str name)
{
    int lo = 0, hi = n;
    nn__ox_key k;
    k.name = name;
    k.id = 0;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2, r = nn__ox_key_cmp(&keys[mid], &k);
        if (!r) return keys[mid].id;
        if (r < 0) lo = mid + 1;
        else hi = mid;
    }
    return -1;
}

static nn__ox_tensor *nn__ox_new_tensor(nn__ox_ctx *c, int dtype, int ndim, const int64_t *dims, size_t count)
{
    nn__ox_tensor *t = (nn__ox_tensor *)nn__ox_alloc(&c->ox, 1, sizeof *t);
    if (!t) return NULL;
    t->dtype = dtype;
    t->ndim = ndim;
    if (ndim) memcpy(t->dims, dims, (size_t)ndim * sizeof *dims);
    t->count = count;
    if (dtype == NN__OX_FLOAT) t->f = (float *)nn__ox_alloc(&c->ox, count + 1, sizeof(float));
    else t->i = (int64_t *)nn__ox_alloc(&c->ox, count + 1, sizeof(int64_t));
    return t->f || t->i ? t : NULL;
}

/* Values, name table, topological order. */
static nn_status nn__ox_graph(nn__ox_ctx *c)
{
    nn__ox *ox = &c->ox;
    nn__ox_key *keys;
    int *indeg, *queue, *succ_n, **succ, k, j, n = 0, head = 0, tail = 0, cap;
    size_t total = (size_t)ox->ninputs + (size_t)ox->ninits;
    for (k = 0; k < ox->nnodes; k++) total += (size_t)ox->nodes[k].nout;
    if (total > INT_MAX / 2) return nn__fail(NN_ERR_FORMAT, "onnx: the graph has too many values");
    cap = (int)total;
    if (!(c->vals = (nn__ox_val *)nn__ox_alloc(ox, (size_t)cap + 1, sizeof *c->vals)) ||
        !(keys = (nn__ox_key *)nn__ox_alloc(ox, (size_t)cap + 1, sizeof *keys)) ||
        !(c->in = (int **)nn__ox_alloc(ox, (size_t)ox->nnodes + 1, sizeof *c->in)) ||
        !(c->out0 = (int *)nn__ox_alloc(ox, (size_t)ox->nnodes + 1, sizeof(int))) ||
        !(c->dyn = (int *)nn__ox_alloc(ox, (size_t)ox->nnodes + 1, sizeof(int))) ||
        !(c->order = (int *)nn__ox_alloc(ox, (size_t)ox->nnodes + 1, sizeof(int))) ||
        !(indeg = (int *)nn__ox_alloc(ox, (size_t)ox->nnodes + 1, sizeof(int))) ||
        !(queue = (int *)nn__ox_alloc(ox, (size_t)ox->nnodes + 1, sizeof(int))) ||
        !(succ_n = (int *)nn__ox_alloc(ox, (size_t)ox->nnodes + 1, sizeof(int))) ||
        !(succ = (int **)nn__ox_alloc(ox, (size_t)ox->nnodes + 1, sizeof *succ)))
        return NN_ERR_NOMEM;
    /* initializers first, so that a graph input of the same name (IR < 4) is theirs */
    for (k = 0; k < ox->ninits; k++) {
        c->vals[n].name = ox->inits[k].name;
        c->vals[n].kind = NN__OX_CONST;
        c->vals[n].t = &ox->inits[k];
        c->vals[n].producer = -1;
        n++;
    }
    for (k = 0; k < ox->ninputs; k++) {
        c->vals[n].name = ox->inputs[k].name;
        c->vals[n].producer = -2 - k;      /* graph input k */
        n++;
    }
    for (k = 0; k < ox->nnodes; k++)
        for (j = 0; j < ox->nodes[k].nout; j++) {
            if (!ox->nodes[k].out[j].n) continue;
            c->vals[n].name = ox->nodes[k].out[j];
            c->vals[n].producer = k;
            n++;
        }
    for (k = 0; k < n; k++) {
        keys[k].name = c->vals[k].name;
        keys[k].id = k;
        c->vals[k].join = -1;
        if (!c->vals[k].name.n) return nn__fail(NN_ERR_FORMAT, "onnx: a graph input or initializer has no name");
    }
    qsort(keys, (size_t)n, sizeof *keys, nn__ox_key_cmp);
    for (k = 1; k < n; k++) {
        if (nn__ox_key_cmp(&keys[k - 1], &keys[k])) continue;
        {
            nn__ox_val *a = &c->vals[keys[k - 1].id], *b = &c->vals[keys[k].id];
            if (a->producer == -1 && b->producer <= -2) { keys[k].id = keys[k - 1].id; continue; }
            if (b->producer == -1 && a->producer <= -2) { keys[k - 1].id = keys[k].id; continue; }
            return nn__fail(NN_ERR_FORMAT, "onnx: the value '%.*s' is produced twice", NN__OX_STR(a->name));
        }
    }
    c->nvals = n;
    c->keys = keys;
    for (k = 0; k < ox->noutputs; k++) {
        int id = nn__ox_find(keys, n, ox->outputs[k].name);
        if (id >= 0) c->vals[id].nread++;
    }
    for (k = 0; k < ox->nnodes; k++) {
        const nn__ox_node *nd = &ox->nodes[k];
        if (!(c->in[k] = (int *)nn__ox_alloc(ox, (size_t)nd->nin, sizeof(int)))) return NN_ERR_NOMEM;
        c->out0[k] = nd->nout && nd->out[0].n ? nn__ox_find(keys, n, nd->out[0]) : -1;
        for (j = 0; j < nd->nin; j++) {
            int id = -1;
            if (nd->in[j].n && (id = nn__ox_find(keys, n, nd->in[j])) < 0)
                return nn__ox_node_fail(c, k, NN_ERR_FORMAT, "reads '%.*s', which no node, initializer "
                                        "or graph input holds", NN__OX_STR(nd->in[j]));
            c->in[k][j] = id;
            if (id >= 0) c->vals[id].nread++;
            if (id >= 0 && c->vals[id].producer >= 0) { indeg[k]++; succ_n[c->vals[id].producer]++; }
        }
    }
    for (k = 0; k < ox->nnodes; k++) {
        if (!(succ[k] = (int *)nn__ox_alloc(ox, (size_t)succ_n[k], sizeof(int)))) return NN_ERR_NOMEM;
        succ_n[k] = 0;
    }
    for (k = 0; k < ox->nnodes; k++)
        for (j = 0; j < ox->nodes[k].nin; j++) {
            int id = c->in[k][j];
            if (id >= 0 && c->vals[id].producer >= 0) {
                int p = c->vals[id].producer;
                succ[p][succ_n[p]++] = k;
            }
        }
    for (k = 0; k < ox->nnodes; k++)
        if (!indeg[k]) queue[tail++] = k;
    while (head < tail) {              /* Kahn: a node once everything it reads is there */
        int m = queue[head++];
        c->order[head - 1] = m;
        for (j = 0; j < succ_n[m]; j++)
            if (!--indeg[succ[m][j]]) queue[tail++] = succ[m][j];
    }
    if (tail < ox->nnodes) {
        for (k = 0; k < ox->nnodes && !indeg[k]; k++) {}
        return nn__ox_node_fail(c, k, NN_ERR_FORMAT, "the graph has a cycle through this node");
    }
    return NN_OK;
}

/* ---- Constants: folding the small integer computations on shapes ---- */

static nn_status nn__ox_fold(nn__ox_ctx *c, int k)
{
    const nn__ox_node *nd = &c->ox.nodes[k];
    nn__ox_val *out = c->out0[k] >= 0 ? &c->vals[c->out0[k]] : NULL;
    const nn__ox_tensor *a = nn__ox_const_in(c, k, 0), *r = NULL;
    nn__ox_tensor *t = NULL;
    int64_t dims[NN__OX_MAX_DIMS];
    size_t i, j;
    int j2;
    if (!out) return NN_OK;
    if (nn__ox_str_is(nd->op, "Constant")) {
        const nn__ox_attr *v;
        if ((v = nn__ox_attr_get(nd, "value")) && v->t) r = v->t;
        else if ((v = nn__ox_attr_get(nd, "value_float")) || (v = nn__ox_attr_get(nd, "value_int"))) {
            if (!(t = nn__ox_new_tensor(c, v->type == NN__OX_A_FLOAT ? NN__OX_FLOAT : NN__OX_INT64, 0, dims, 1)))
                return NN_ERR_NOMEM;
            if (t->f) t->f[0] = v->f; else t->i[0] = v->i;
        } else if ((v = nn__ox_attr_get(nd, "value_floats")) || (v = nn__ox_attr_get(nd, "value_ints"))) {
            size_t cnt = v->type == NN__OX_A_FLOATS ? v->nfloats : v->nints;
            dims[0] = (int64_t)cnt;
            if (!(t = nn__ox_new_tensor(c, v->type == NN__OX_A_FLOATS ? NN__OX_FLOAT : NN__OX_INT64, 1, dims, cnt)))
                return NN_ERR_NOMEM;
            for (i = 0; i < cnt; i++) { if (t->f) t->f[i] = v->floats[i]; else t->i[i] = v->ints[i]; }
        } else {
            return nn__ox_node_fail(c, k, NN_ERR_FORMAT, "no value (or a kind of value nn.h does not read)");
        }
    } else if (nn__ox_str_is(nd->op, "Identity")) {
        r = a;
    } else if (!a || (!a->i && !a->f)) {
        return nn__ox_node_fail(c, k, NN_ERR_FORMAT, "a constant of a type other than float32 or int64");
    } else if (nn__ox_str_is(nd->op, "Cast")) {
        int64_t to = nn__ox_attr_int(nd, "to", 0);
        if (to != NN__OX_FLOAT && to != NN__OX_INT64)
            return nn__ox_node_fail(c, k, NN_ERR_FORMAT, "cast to type %lld (only float32 and int64)", (long long)to);
        if (!(t = nn__ox_new_tensor(c, (int)to, a->ndim, a->dims, a->count))) return NN_ERR_NOMEM;
        for (i = 0; i < a->count; i++) {
            double x = a->f ? (double)a->f[i] : (double)a->i[i];
            if (t->f) t->f[i] = (float)x;
            else if (!(x > -9.2e18 && x < 9.2e18)) return nn__ox_node_fail(c, k, NN_ERR_FORMAT, "casts %g to int64", x);
            else t->i[i] = a->f ? (int64_t)x : a->i[i];
        }
    } else if (a->count > NN__OX_MAX_FOLD) {
        return nn__ox_node_fail(c, k, NN_ERR_FORMAT, "computes on a constant of %zu values; nn.h evaluates "
                                "only small shape computations (at most %d values)", a->count, NN__OX_MAX_FOLD);
    } else if (nn__ox_str_is(nd->op, "Gather")) {
        const nn__ox_tensor *ix = nn__ox_const_in(c, k, 1);
        int64_t axis = nn__ox_attr_int(nd, "axis", 0);
        if (a->ndim != 1 || (axis != 0 && axis != -1) || !ix || !ix->i || ix->ndim > 1)
            return nn__ox_node_fail(c, k, NN_ERR_FORMAT, "gathers other than integers of a 1-D constant");
        dims[0] = (int64_t)ix->count;
        if (!(t = nn__ox_new_tensor(c, a->dtype, ix->ndim, dims, ix->count))) return NN_ERR_NOMEM;
        for (i = 0; i < ix->count; i++) {
            int64_t at = ix->i[i] < 0 ? ix->i[i] + a->dims[0] : ix->i[i];
            if (at < 0 || at >= a->dims[0])
                return nn__ox_node_fail(c, k, NN_ERR_FORMAT, "index %lld outside 0..%lld",
                                        (long long)ix->i[i], (long long)a->dims[0] - 1);
            if (t->f) t->f[i] = a->f[at]; else t->i[i] = a->i[at];
        }
    } else if (nn__ox_str_is(nd->op, "Unsqueeze") || nn__ox_str_is(nd->op, "Squeeze")) {
        const nn__ox_attr *ax = nn__ox_attr_get(nd, "axes");
        const nn__ox_tensor *axt = nn__ox_const_in(c, k, 1);
        int64_t axes[NN__OX_MAX_VALUES];
        size_t nax = 0;
        int unsq = nd->op.n == 9, rank, keep[NN__OX_MAX_DIMS + NN__OX_MAX_VALUES];
        if (ax) { nax = ax->nints; memcpy(axes, ax->ints, nax * sizeof *axes); }
        else if (axt && axt->i && axt->count <= NN__OX_MAX_VALUES) { nax = axt->count; memcpy(axes, axt->i, nax * sizeof *axes); }
        else if (unsq || nd->nin > 1) return nn__ox_node_fail(c, k, NN_ERR_FORMAT, "axes that are not a small constant");
        rank = unsq ? a->ndim + (int)nax : a->ndim;
        if (rank > NN__OX_MAX_DIMS) return nn__ox_node_fail(c, k, NN_ERR_FORMAT, "more than %d dimensions", NN__OX_MAX_DIMS);
        for (j2 = 0; j2 < rank; j2++) keep[j2] = unsq ? 0 : 1;
        for (i = 0; i < nax; i++) {
            int64_t x = axes[i] < 0 ? axes[i] + rank : axes[i];
            if (x < 0 || x >= rank || (!unsq && a->dims[x] != 1) || (unsq && keep[x]))
                return nn__ox_node_fail(c, k, NN_ERR_FORMAT, "axis %lld does not fit", (long long)axes[i]);
            keep[x] = unsq ? 1 : 0;   /* Unsqueeze: a new axis; Squeeze: a dropped one */
        }
        for (j2 = 0, i = 0, j = 0; j2 < rank; j2++) {
            if (unsq) dims[i++] = keep[j2] ? 1 : a->dims[j++];
            else if (nax ? keep[j2] : a->dims[j2] != 1) dims[i++] = a->dims[j2];
        }
        if (!(t = nn__ox_new_tensor(c, a->dtype, (int)i, dims, a->count))) return NN_ERR_NOMEM;
        if (t->f) memcpy(t->f, a->f, a->count * sizeof *t->f); else memcpy(t->i, a->i, a->count * sizeof *t->i);
    } else if (nn__ox_str_is(nd->op, "Concat")) {
        size_t cnt = 0;
        for (j2 = 0; j2 < nd->nin; j2++) {
            const nn__ox_tensor *b = nn__ox_const_in(c, k, j2);
            if (!b || b->ndim != 1 || b->dtype != a->dtype || (!b->i && !b->f))
                return nn__ox_node_fail(c, k, NN_ERR_FORMAT, "concatenates other than 1-D constants of one type");
            cnt += b->count;
        }
        if (cnt > NN__OX_MAX_FOLD)
            return nn__ox_node_fail(c, k, NN_ERR_FORMAT, "makes a constant of %zu values (at most %d)", cnt, NN__OX_MAX_FOLD);
        dims[0] = (int64_t)cnt;
        if (!(t = nn__ox_new_tensor(c, a->dtype, 1, dims, cnt))) return NN_ERR_NOMEM;
        for (j2 = 0, cnt = 0; j2 < nd->nin; j2++) {
            const nn__ox_tensor *b = nn__ox_const_in(c, k, j2);
            for (i = 0; i < b->count; i++, cnt++) { if (t->f) t->f[cnt] = b->f[i]; else t->i[cnt] = b->i[i]; }
        }
    } else {
        return nn__ox_node_fail(c, k, NN_ERR_FORMAT, "computes on constants only, which nn.h evaluates for "
                                "Constant, Identity, Cast, Gather, Unsqueeze, Squeeze, Concat and Shape");
    }
    out->kind = NN__OX_CONST;
    out->t = r ? r : t;
    return NN_OK;
}

/* ---- Shapes, and the layer of each node that computes on the input ---- */

static int nn__ox_op(nn__ox_ctx *c, int k, const char *op) { return k >= 0 && nn__ox_str_is(c->ox.nodes[k].op, op); }

/* One axis of a window (Conv, MaxPool, AveragePool): ONNX's pads (begin, end) as nn.h's
   one pad on each side (and nn.h's ceil_mode ours_ceil), where that gives the same output
   size (the windows then start at the same places and read the same values); *out the size. */
static int nn__ox_axis(int64_t size, int64_t k_eff, int64_t stride, int64_t pb, int64_t pe, int ceil_mode,
                       int ours_ceil, int64_t *out)
{
    int64_t span = size + pb + pe - k_eff, sym = size + 2 * pb - k_eff, ours;
    if (span < 0 || sym < 0) return 0;
    *out = (ceil_mode ? (span + stride - 1) / stride : span / stride) + 1;
    ours = (ours_ceil ? (sym + stride - 1) / stride : sym / stride) + 1;
    if (ours_ceil && (ours - 1) * stride >= size + pb) ours--;   /* PyTorch: the last window starts inside */
    return ours == *out;
}

/* Conv, MaxPool, AveragePool: kernel, strides, pads, dilations, auto_pad into d. */
static nn_status nn__ox_window(nn__ox_ctx *c, int k, const nn__ox_val *x, int64_t kh, int64_t kw,
                               const int64_t *padded, nn_layer_desc *d, int64_t *oh, int64_t *ow)
{
    const nn__ox_node *nd = &c->ox.nodes[k];
    const nn__ox_attr *st = nn__ox_attr_get(nd, "strides"), *pads = nn__ox_attr_get(nd, "pads"),
                      *dil = nn__ox_attr_get(nd, "dilations"), *ap = nn__ox_attr_get(nd, "auto_pad"),
                      *ks = nn__ox_attr_get(nd, "kernel_shape");
    int64_t s[2] = { 1, 1 }, p[4] = { 0, 0, 0, 0 }, dl[2] = { 1, 1 }, kk[2], in[2], o[2];
    int ceil_mode = (int)nn__ox_attr_int(nd, "ceil_mode", 0), ours, i;
    kk[0] = kh; kk[1] = kw; in[0] = x->d[2]; in[1] = x->d[3];
    if (ks && (ks->nints != 2 || ks->ints[0] != kh || ks->ints[1] != kw))
        return nn__ox_node_fail(c, k, NN_ERR_FORMAT, "kernel_shape does not match the weight (or is not 2-D)");
    if ((st && st->nints != 2) || (pads && pads->nints != 4) || (dil && dil->nints != 2))
        return nn__ox_node_fail(c, k, NN_ERR_FORMAT, "strides, pads or dilations of another rank than 2-D");
    if (ceil_mode != 0 && ceil_mode != 1) return nn__ox_node_fail(c, k, NN_ERR_FORMAT, "ceil_mode %d", ceil_mode);
    if (padded) {                      /* an AveragePool after a Pad (PyTorch's count_include_pad) */
        for (i = 0; pads && i < 4; i++)   /* and uncounted end pads (nn_save_onnx's ceil_mode) */
            if (pads->ints[i] && (i < 2 || pads->ints[i] < 0 || pads->ints[i] > 65535 ||
                                  nn__ox_attr_int(nd, "count_include_pad", 0)))
                return nn__ox_node_fail(c, k, NN_ERR_FORMAT, "pads of its own after a Pad, other than uncounted "
                                        "ones at the end");
        if (ap && !nn__ox_str_is(ap->s, "NOTSET")) return nn__ox_node_fail(c, k, NN_ERR_FORMAT, "auto_pad after a Pad");
    }
    for (i = 0; i < 2; i++) {
        if (st) s[i] = st->ints[i];
        if (dil) dl[i] = dil->ints[i];
        if (pads) { p[i] = pads->ints[i]; p[i + 2] = pads->ints[i + 2]; }
        if (padded) { p[i] = padded[i]; p[i + 2] = padded[i + 2] + (pads ? pads->ints[i + 2] : 0); }
        if (kk[i] < 1 || kk[i] > 65535 || s[i] < 1 || s[i] > 65535 || dl[i] < 1 || dl[i] > 65535 ||
            p[i] < 0 || p[i] > 65535 || p[i + 2] < 0 || p[i + 2] > 65535)
            return nn__ox_node_fail(c, k, NN_ERR_FORMAT, "a kernel, stride, dilation or pad out of range");
    }
    if (ap && !nn__ox_str_is(ap->s, "NOTSET")) {
        int upper = nn__ox_str_is(ap->s, "SAME_UPPER"), lower = nn__ox_str_is(ap->s, "SAME_LOWER");
        if (!upper && !lower && !nn__ox_str_is(ap->s, "VALID"))
            return nn__ox_node_fail(c, k, NN_ERR_FORMAT, "auto_pad '%.*s'", NN__OX_STR(ap->s));
        for (i = 0; i < 2; i++) {
            int64_t k_eff = (kk[i] - 1) * dl[i] + 1, total = 0;
            if (upper || lower) {
                total = ((in[i] + s[i] - 1) / s[i] - 1) * s[i] + k_eff - in[i];
                if (total < 0) total = 0;
            }
            p[i] = upper ? total / 2 : total - total / 2;
            p[i + 2] = total - p[i];
        }
        ceil_mode = 0;
    }
    /* a pool's end pads that add windows (nn_save_onnx's where ONNX's ceil_mode would
       count otherwise) are nn.h's ceil_mode, if it gives the same sizes on both axes */
    for (ours = ceil_mode;; ours = 1) {
        for (i = 0; i < 2 && nn__ox_axis(in[i], (kk[i] - 1) * dl[i] + 1, s[i], p[i], p[i + 2], ceil_mode, ours, &o[i]) &&
                    o[i] >= 1; i++) {}
        if (i == 2 || ours || d->kind == NN_CONV2D) break;
    }
    if (i < 2)
        return nn__ox_node_fail(c, k, NN_ERR_FORMAT, "pads (%lld, %lld) on an axis of %lld: nn.h pads both "
                                "sides alike and this gives another output size (or none)",
                                (long long)p[i], (long long)p[i + 2], (long long)in[i]);
    ceil_mode = ours;
    d->kernel_h = (int)kk[0]; d->kernel_w = (int)kk[1];
    d->stride_h = (int)s[0]; d->stride_w = (int)s[1];
    d->pad_h = (int)p[0]; d->pad_w = (int)p[1];
    if (d->kind == NN_CONV2D) { d->dilation_h = (int)dl[0]; d->dilation_w = (int)dl[1]; }
    else if (dl[0] != 1 || dl[1] != 1) return nn__ox_node_fail(c, k, NN_ERR_FORMAT, "pooling with dilations");
    if (d->kind != NN_CONV2D) d->ceil_mode = ceil_mode;
    if (d->kind == NN_AVGPOOL2D) {
        const int64_t *counted = padded ? padded : p;
        int include = padded || nn__ox_attr_int(nd, "count_include_pad", 0);
        if (include && (counted[0] != counted[2] || counted[1] != counted[3]))
            return nn__ox_node_fail(c, k, NN_ERR_FORMAT, "count_include_pad with pads unlike on the two sides");
        d->exclude_pad = !include;
    }
    *oh = o[0];
    *ow = o[1];
    return NN_OK;
}

static int nn__ox_is_unary(nn__ox_str op)
{
    static const char *const ops[] = { "Relu", "LeakyRelu", "Sigmoid", "Tanh", "Softplus", "Gelu", "Erf",
                                       "Clip", "Dropout", "Identity", "BatchNormalization", "Softmax",
                                       "LogSoftmax" };
    size_t i;
    for (i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (nn__ox_str_is(op, ops[i])) return 1;
    return 0;
}

/* A constant that broadcasts onto the computed value x without growing it. */
static int nn__ox_fits(const nn__ox_tensor *t, const nn__ox_val *x)
{
    int i;
    if (t->ndim > x->rank) return 0;
    for (i = 0; i < t->ndim; i++) {
        int64_t td = t->dims[t->ndim - 1 - i], xd = x->d[x->rank - 1 - i];
        if (td != 1 && (td != xd || x->rank - 1 - i == 0)) return 0;
    }
    return 1;
}

/* The shape of node k's output from its input x; the layer desc where one node is one
   layer (the weights are picked up when the layer is emitted). */
static nn_status nn__ox_infer(nn__ox_ctx *c, int k, nn_layer_desc *desc)
{
    const nn__ox_node *nd = &c->ox.nodes[k];
    nn__ox_val *x = nn__ox_in(c, k, 0), *y = c->out0[k] >= 0 ? &c->vals[c->out0[k]] : NULL, o;
    nn__ox_str op = nd->op;
    const nn__ox_tensor *w = nn__ox_const_in(c, k, 1);
    int j, ndyn = 0;
    memset(&o, 0, sizeof o);
    memset(desc, 0, sizeof *desc);
    for (j = 0; j < nd->nin; j++) ndyn += nn__ox_in(c, k, j) && nn__ox_in(c, k, j)->kind == NN__OX_DYN;
    if (!y) return nn__ox_node_fail(c, k, NN_ERR_FORMAT, "no output");
    if (!x || x->kind != NN__OX_DYN) {
        if (!(ndyn == 1 && (nn__ox_str_is(op, "Add") || nn__ox_str_is(op, "Mul")) && nn__ox_in(c, k, 1)))
            return nn__ox_node_fail(c, k, NN_ERR_FORMAT, "computes on the input through its input %d; "
                                    "nn.h reads it only through the first", 1);
        x = nn__ox_in(c, k, 1);
    }
    o = *x;
    o.ncons = 0; o.cons = NULL; o.join = -1; o.t = NULL;
    if (nn__ox_is_unary(op)) {
        if (ndyn != 1) return nn__ox_node_fail(c, k, NN_ERR_FORMAT, "reads the input twice");
        if (nn__ox_str_is(op, "BatchNormalization") && x->rank < 2)
            return nn__ox_node_fail(c, k, NN_ERR_FORMAT, "on a value without channels");
    } else if (nn__ox_str_is(op, "Add") || nn__ox_str_is(op, "Mul") || nn__ox_str_is(op, "Div") ||
               nn__ox_str_is(op, "Greater")) {
        nn__ox_val *a = nn__ox_in(c, k, 0), *b = nn__ox_in(c, k, 1);
        if (nd->nin != 2 || !a || !b) return nn__ox_node_fail(c, k, NN_ERR_FORMAT, "expects two inputs");
        if (ndyn == 2) {
            if ((a == b && op.p[0] != 'M') || a->rank != b->rank || memcmp(a->d + 1, b->d + 1, sizeof(int64_t) * 3))
                return nn__ox_node_fail(c, k, NN_ERR_FORMAT, "adds or multiplies computed values of other shapes");
            if (nn__ox_str_is(op, "Div")) return nn__ox_node_fail(c, k, NN_ERR_FORMAT, "divides by a computed value");
        } else {
            const nn__ox_tensor *t = a->kind == NN__OX_DYN ? b->t : a->t;
            if (nn__ox_str_is(op, "Div") && a->kind != NN__OX_DYN)
                return nn__ox_node_fail(c, k, NN_ERR_FORMAT, "divides a constant by a computed value");
            if (!t->f || !nn__ox_fits(t, x))
                return nn__ox_node_fail(c, k, NN_ERR_FORMAT, "a float32 constant that does not broadcast onto "
                                        "the computed value without varying along its batch");
        }
    } else if (nn__ox_str_is(op, "Where")) {
        for (j = 1; j < nd->nin; j++)
            if (!nn__ox_in(c, k, j) || nn__ox_in(c, k, j)->rank != x->rank ||
                memcmp(nn__ox_in(c, k, j)->d + 1, x->d + 1, sizeof(int64_t) * 3))
                break;
        if (nd->nin != 3 || ndyn != 3 || j < 3)
            return nn__ox_node_fail(c, k, NN_ERR_FORMAT, "a Where other than of three computed values of one shape");
    } else if (nn__ox_str_is(op, "Conv")) {
        const nn__ox_tensor *b = nn__ox_const_in(c, k, 2);
        int64_t g = nn__ox_attr_int(nd, "group", 1), oh, ow;
        nn_status st;
        if (x->rank != 4) return nn__ox_node_fail(c, k, NN_ERR_FORMAT, "nn.h convolves 2-D images (N x C x H x W) only");
        if (!w || !w->f || w->ndim != 4 || nn__ox_in(c, k, 1)->kind != NN__OX_CONST)
            return nn__ox_node_fail(c, k, NN_ERR_FORMAT, "the weight is not a float32 O x C x kH x kW constant");
        if (g < 1 || x->d[1] % g || w->dims[0] % g || w->dims[1] * g != x->d[1] || w->dims[0] < 1)
            return nn__ox_node_fail(c, k, NN_ERR_FORMAT, "a weight of %lld x %lld for %lld channels in %lld groups",
                                    (long long)w->dims[0], (long long)w->dims[1], (long long)x->d[1], (long long)g);
        if (nd->nin > 2 && nd->in[2].n && (!b || !b->f || b->count != (size_t)w->dims[0]))
            return nn__ox_node_fail(c, k, NN_ERR_FORMAT, "the bias is not a float32 constant of %lld values",
                                    (long long)w->dims[0]);
        desc->kind = NN_CONV2D;
        desc->out = (int)w->dims[0];
        desc->groups = (int)g;
        desc->no_bias = !b;
        if ((st = nn__ox_window(c, k, x, w->dims[2], w->dims[3], NULL, desc, &oh, &ow)) != NN_OK) return st;
        o.d[1] = w->dims[0]; o.d[2] = oh; o.d[3] = ow;
    } else if (nn__ox_str_is(op, "MaxPool") || nn__ox_str_is(op, "AveragePool")) {
        const nn__ox_attr *ks = nn__ox_attr_get(nd, "kernel_shape");
        int64_t oh, ow;
        nn_status st;
        if (x->rank != 4 || !ks || ks->nints != 2)
            return nn__ox_node_fail(c, k, NN_ERR_FORMAT, "nn.h pools 2-D images (N x C x H x W, a 2-D kernel) only");
        if (nd->nout > 1 && nd->out[1].n)
            return nn__ox_node_fail(c, k, NN_ERR_FORMAT, "the indices output (not supported)");
        if (nn__ox_attr_int(nd, "storage_order", 0))
            return nn__ox_node_fail(c, k, NN_ERR_FORMAT, "storage_order 1 (not supported)");
        int pad = x->producer >= 0 && nn__ox_op(c, x->producer, "Pad") ? x->producer : -1;
        desc->kind = op.n == 7 ? NN_MAXPOOL2D : NN_AVGPOOL2D;
        if (pad >= 0 && desc->kind == NN_AVGPOOL2D && (c->pads[pad][0] || c->pads[pad][1] || c->pads[pad][2] ||
                                                       c->pads[pad][3])) {
            x = nn__ox_in(c, pad, 0);
            c->fused[pad] = 1;
        } else pad = -1;
        if ((st = nn__ox_window(c, k, x, ks->ints[0], ks->ints[1], pad >= 0 ? c->pads[pad] : NULL, desc, &oh, &ow))
            != NN_OK) return st;
        o.d[2] = oh; o.d[3] = ow;
    } else if (nn__ox_str_is(op, "Pad")) {
        const nn__ox_attr *mode = nn__ox_attr_get(nd, "mode"), *pa = nn__ox_attr_get(nd, "pads");
        const nn__ox_tensor *pt = nn__ox_const_in(c, k, 1);
        int64_t p8[NN__OX_MAX_VALUES];
        size_t np = 0;
        double value = nn__ox_attr_float(nd, "value", 0.0f);
        if (mode && !nn__ox_str_is(mode->s, "constant"))
            return nn__ox_node_fail(c, k, NN_ERR_FORMAT, "mode '%.*s' (nn.h pads with zeros)", NN__OX_STR(mode->s));
        if (pa) { np = pa->nints; memcpy(p8, pa->ints, np * sizeof *p8); }
        else if (pt && pt->i && pt->count <= NN__OX_MAX_VALUES) { np = pt->count; memcpy(p8, pt->i, np * sizeof *p8); }
        if (nd->nin > 2 && nd->in[2].n && !nn__ox_scalar(nn__ox_const_in(c, k, 2), &value)) value = 1;
        if (np != (size_t)(2 * x->rank) || value != 0)
            return nn__ox_node_fail(c, k, NN_ERR_FORMAT, "pads that are not %d constants, or a value other than 0",
                                    2 * x->rank);
        for (j = 0; j < 2 * x->rank; j++)
            if (p8[j] < 0 || p8[j] > 65535 || ((j % x->rank) < 2 && p8[j]) || (x->rank != 4 && p8[j]))
                return nn__ox_node_fail(c, k, NN_ERR_FORMAT, "pads other than 0 to 65535 on the two image axes");
        if (x->rank == 4) {
            c->pads[k][0] = p8[2]; c->pads[k][1] = p8[3]; c->pads[k][2] = p8[6]; c->pads[k][3] = p8[7];
            o.d[2] += p8[2] + p8[6];
            o.d[3] += p8[3] + p8[7];
        }
    } else if (nn__ox_str_is(op, "GlobalAveragePool")) {
        if (x->rank != 4) return nn__ox_node_fail(c, k, NN_ERR_FORMAT, "nn.h pools 2-D images (N x C x H x W) only");
        desc->kind = NN_GLOBAL_AVGPOOL;
        o.d[2] = o.d[3] = 1;
    } else if (nn__ox_str_is(op, "Flatten") || nn__ox_str_is(op, "Reshape")) {
        int64_t prod = 1;
        for (j = 1; j < x->rank; j++) prod *= x->d[j];
        if (op.p[0] == 'F') {
            int64_t axis = nn__ox_attr_int(nd, "axis", 1);
            if (axis < 0) axis += x->rank;
            if (axis != 1)
                return nn__ox_node_fail(c, k, NN_ERR_FORMAT, "axis %lld; nn.h flattens to batch x features "
                                        "(axis 1) only", (long long)nn__ox_attr_int(nd, "axis", 1));
        } else {
            const nn__ox_tensor *s = w;
            int64_t r[NN__OX_MAX_DIMS], known = 1;
            int allowzero = (int)nn__ox_attr_int(nd, "allowzero", 0), infer = -1, same;
            if (!s || !s->i || s->ndim != 1 || s->count > NN__OX_MAX_DIMS || !s->count)
                return nn__ox_node_fail(c, k, NN_ERR_FORMAT, "a shape that is not a constant of 1 to %d integers",
                                        NN__OX_MAX_DIMS);
            for (j = 0; j < (int)s->count; j++) {
                r[j] = s->i[j];
                if (r[j] == 0 && !allowzero) {
                    if (j >= x->rank) return nn__ox_node_fail(c, k, NN_ERR_FORMAT, "copies a dimension it lacks");
                    r[j] = x->d[j];
                }
                if (r[j] == -1) {
                    if (infer >= 0) return nn__ox_node_fail(c, k, NN_ERR_FORMAT, "two dimensions of -1");
                    infer = j;
                } else if (j && (r[j] < 1 || r[j] > INT_MAX)) {
                    return nn__ox_node_fail(c, k, NN_ERR_FORMAT, "dimension %d is %lld", j, (long long)r[j]);
                } else if (j) known *= r[j];
            }
            if (r[0] == c->batch && infer > 0 && prod % known == 0) r[infer] = prod / known;
            else if (infer == 0 && prod % known == 0 && known == prod) r[0] = c->batch;
            same = (int)s->count == x->rank && r[0] == c->batch;
            for (j = 1; same && j < x->rank; j++) same = r[j] == x->d[j];
            if (!same && x->rank == 2 && s->count <= 4 && r[0] == c->batch && r[1] == x->d[1])
                for (same = 1, j = 2; j < (int)s->count; j++) same &= r[j] == 1;   /* N x F x 1 x 1 */
            if (same) {              /* to its own shape (nn.h's F features are F x 1 x 1): nothing to do */
                y->kind = NN__OX_DYN;
                y->rank = (int)s->count;
                memcpy(y->d, x->d, sizeof y->d);
                return NN_OK;
            }
            if (s->count != 2 || r[0] != c->batch || r[1] != prod)
                return nn__ox_node_fail(c, k, NN_ERR_FORMAT, "a reshape other than to batch x %lld features "
                                        "(the only one nn.h has, Flatten)", (long long)prod);
        }
        if (x->rank > 2) desc->kind = NN_FLATTEN;
        o.rank = 2;
        o.d[1] = prod; o.d[2] = o.d[3] = 1;
    } else if (nn__ox_str_is(op, "Gemm") || nn__ox_str_is(op, "MatMul")) {
        int gemm = op.n == 4, tb = gemm && nn__ox_attr_int(nd, "transB", 0);
        if (x->rank != 2 || x != nn__ox_in(c, k, 0))
            return nn__ox_node_fail(c, k, NN_ERR_FORMAT, "nn.h multiplies batch x features by a constant only");
        if (gemm && nn__ox_attr_int(nd, "transA", 0))
            return nn__ox_node_fail(c, k, NN_ERR_FORMAT, "transA 1 (it would mix the samples of a batch)");
        if (!w || !w->f || w->ndim != 2 || w->dims[tb ? 1 : 0] != x->d[1] || w->dims[tb ? 0 : 1] < 1)
            return nn__ox_node_fail(c, k, NN_ERR_FORMAT, "the weight is not a float32 constant of %lld x N",
                                    (long long)x->d[1]);
        desc->kind = NN_LINEAR;
        desc->out = (int)w->dims[tb ? 0 : 1];
        o.d[1] = desc->out;
    } else {
        return nn__ox_node_fail(c, k, NN_ERR_FORMAT, "unsupported operator (docs/ONNX.md lists those nn.h reads)");
    }
    y->kind = NN__OX_DYN;
    y->rank = o.rank;
    memcpy(y->d, o.d, sizeof y->d);
    return NN_OK;
}

/* The evaluation pass over the nodes in topological order. */
static nn_status nn__ox_shapes(nn__ox_ctx *c, nn_layer_desc *descs)
{
    int i, j;
    nn_status st;
    for (i = 0; i < c->ox.nnodes; i++) {
        int k = c->order[i], ndyn = 0;
        const nn__ox_node *nd = &c->ox.nodes[k];
        nn__ox_val *x = nn__ox_in(c, k, 0);
        if (nd->domain.n && !nn__ox_str_is(nd->domain, "ai.onnx"))
            return nn__ox_node_fail(c, k, NN_ERR_FORMAT, "operator domain '%.*s' (nn.h reads the default one)",
                                    NN__OX_STR(nd->domain));
        for (j = 0; j < nd->nin; j++) ndyn += nn__ox_in(c, k, j) && nn__ox_in(c, k, j)->kind == NN__OX_DYN;
        for (j = 1; j < nd->nout; j++)   /* a second output must be absent or unread */
            if (nd->out[j].n && c->vals[nn__ox_find(c->keys, c->nvals, nd->out[j])].nread)
                return nn__ox_node_fail(c, k, NN_ERR_FORMAT, "its output %d is read (nn.h computes the first "
                                        "output only)", j);
        if (nn__ox_str_is(nd->op, "Shape") && x && x->kind == NN__OX_DYN) {
            nn__ox_val *y = c->out0[k] >= 0 ? &c->vals[c->out0[k]] : NULL;
            nn__ox_tensor *t;
            int64_t n = x->rank;
            if (!y) continue;
            if (nn__ox_attr_get(nd, "start") || nn__ox_attr_get(nd, "end"))
                return nn__ox_node_fail(c, k, NN_ERR_FORMAT, "start or end (not supported)");
            if (!(t = nn__ox_new_tensor(c, NN__OX_INT64, 1, &n, (size_t)n))) return NN_ERR_NOMEM;
            for (j = 0; j < x->rank; j++) t->i[j] = x->d[j];
            y->kind = NN__OX_CONST;
            y->t = t;
            continue;
        }
        if (!ndyn) {
            if ((st = nn__ox_fold(c, k)) != NN_OK) return st;
            continue;
        }
        c->dyn[k] = 1;
        if ((st = nn__ox_infer(c, k, &descs[k])) != NN_OK) return st;
    }
    return NN_OK;
}

/* ---- The walk: layers in the order of the computation ---- */

static nn_status nn__ox_emit(nn__ox_ctx *c, nn_layer_desc d, nn__ox_layer **out)
{
    nn__ox_layer *L;
    if (c->nlayers == c->cap) return nn__fail(NN_ERR_FORMAT, "onnx: more layers than the graph has nodes");
    L = &c->layers[c->nlayers++];
    memset(L, 0, sizeof *L);
    L->desc = d;
    if (out) *out = L;
    return NN_OK;
}

/* The layer's name from its weight's: "features.0.weight" gives "features.0". */
static void nn__ox_name(nn__ox_layer *L, nn__ox_str weight, const char *suffix)
{
    size_t n = strlen(suffix), len = weight.n - n;
    char name[NN_MAX_NAME];
    if (weight.n <= n || len >= sizeof name || memcmp(weight.p + len, suffix, n)) return;
    memcpy(name, weight.p, len);
    name[len] = '\0';
    if (nn__name_check(name) == NN_OK) memcpy(L->name, name, len + 1);
}

/* The only reader of value v, or -1. */
static int nn__ox_sole(nn__ox_ctx *c, int v) { return v >= 0 && c->vals[v].ncons == 1 ? c->vals[v].cons[0] : -1; }

/* A scalar constant input of node k near value x (|const - x| <= tol), either side. */
static int nn__ox_const_near(nn__ox_ctx *c, int k, double x, double tol)
{
    double v;
    int j;
    for (j = 0; j < 2; j++)
        if (nn__ox_scalar(nn__ox_const_in(c, k, j), &v) && fabs(v - x) <= tol) return 1;
    return 0;
}

/* The other input of a binary node k besides value v. */
static int nn__ox_other(nn__ox_ctx *c, int k, int v)
{
    return c->in[k][0] == v ? c->in[k][1] : c->in[k][0];
}

/* GELU as PyTorch 1.13 exports the exact one, from the value x that two nodes read:
   y = (x * (erf(x / sqrt 2) + 1)) * 0.5 or (x * 0.5) * (erf(x / sqrt 2) + 1), the
   division possibly a multiplication by 1 / sqrt 2, operands in either order. The
   output value, or -1 if this is not the pattern. */
static int nn__ox_gelu(nn__ox_ctx *c, int x)
{
    int p, div = -1, b = -1, erf, add, e;
    double v;
    if (c->vals[x].ncons != 2) return -1;
    for (p = 0; p < 2 && div < 0; p++) {
        int a = c->vals[x].cons[p];
        if ((nn__ox_op(c, a, "Div") && nn__ox_scalar(nn__ox_const_in(c, a, 1), &v) && fabs(v - 1.41421356) < 1e-5) ||
            (nn__ox_op(c, a, "Mul") && nn__ox_const_near(c, a, 0.70710678, 1e-6))) {
            div = a;
            b = c->vals[x].cons[1 - p];
        }
    }
    if (div < 0) return -1;
    erf = nn__ox_sole(c, c->out0[div]);
    if (!nn__ox_op(c, erf, "Erf")) return -1;
    add = nn__ox_sole(c, c->out0[erf]);
    if (!nn__ox_op(c, add, "Add") || !nn__ox_const_near(c, add, 1.0, 1e-6)) return -1;
    e = nn__ox_sole(c, c->out0[add]);
    if (!nn__ox_op(c, e, "Mul")) return -1;
    if (e == b) {                        /* x * (erf + 1), then * 0.5 */
        int h = nn__ox_sole(c, c->out0[e]);
        if (nn__ox_other(c, e, c->out0[add]) != x || !nn__ox_op(c, h, "Mul") || !nn__ox_const_near(c, h, 0.5, 1e-7))
            return -1;
        return c->out0[h];
    }
    if (!nn__ox_op(c, b, "Mul") || !nn__ox_const_near(c, b, 0.5, 1e-7) || nn__ox_sole(c, c->out0[b]) != e ||
        nn__ox_other(c, e, c->out0[add]) != c->out0[b])
        return -1;
    return c->out0[e];                   /* (x * 0.5) * (erf + 1) */
}

/* A link of a chain: its op, and its operand besides the value before it: none ('-'),
   the chain's input ('x') or a scalar constant k ('k'). */
typedef struct nn__ox_link { const char *op; char with; double k; } nn__ox_link;

static int nn__ox_link_fits(nn__ox_ctx *c, int k, const nn__ox_link *L, int v, int x, double *kv)
{
    int other;
    if (!nn__ox_op(c, k, L->op)) return 0;
    if (L->with == '-') return c->ox.nodes[k].nin == 1 && c->in[k][0] == v;
    if (c->ox.nodes[k].nin != 2 || (c->in[k][0] != v && c->in[k][1] != v)) return 0;
    other = nn__ox_other(c, k, v);
    if (L->with == 'x') return other == x;
    return other >= 0 && c->vals[other].kind == NN__OX_CONST && nn__ox_scalar(c->vals[other].t, kv);
}

/* The chain link[0..n) from value x: each node reads the value before it (x for the
   first) and its operand, and is that value's only reader; the chain reads x as often
   as all of x's readers do. *y its output, or -1 where the graph has another shape;
   a constant more than 1e-6 (relative) off link's is an error naming its node. */
static nn_status nn__ox_chain(nn__ox_ctx *c, int x, const nn__ox_link *link, int n, const char *what, int *y)
{
    int i = 0, p, k = -1, v = x, reads = 1, bad = -1, bad_i = 0;
    double kv = 0, bad_k = 0;
    *y = -1;
    for (p = 0; p < c->vals[x].ncons && k < 0; p++)
        if (nn__ox_link_fits(c, c->vals[x].cons[p], link, x, x, &kv)) k = c->vals[x].cons[p];
    while (k >= 0) {
        reads += link[i].with == 'x';
        if (link[i].with == 'k' && bad < 0 && !(fabs(kv - link[i].k) <= 1e-6 * fabs(link[i].k))) {
            bad = k; bad_i = i; bad_k = kv;
        }
        v = c->out0[k];
        if (++i == n) break;
        if (!nn__ox_link_fits(c, k = nn__ox_sole(c, v), &link[i], v, x, &kv)) return NN_OK;
    }
    if (k < 0 || reads != c->vals[x].ncons) return NN_OK;
    if (bad >= 0)
        return nn__ox_node_fail(c, bad, NN_ERR_FORMAT, "the constant %.9g where %s has %.9g", bad_k, what,
                                link[bad_i].k);
    *y = v;
    return NN_OK;
}

/* The scalar constant operand of binary node k besides value v. */
static int nn__ox_operand(nn__ox_ctx *c, int k, int v, double *kv)
{
    int other = c->ox.nodes[k].nin == 2 ? nn__ox_other(c, k, v) : -1;
    return other >= 0 && other != v && c->vals[other].kind == NN__OX_CONST && nn__ox_scalar(c->vals[other].t, kv);
}

/* Softplus with nn.h's threshold as the export writes it, from value x read by two or
   three nodes: Where(Greater(z, threshold), x, Softplus(z)) with z = x, or with
   z = Mul(x, beta) and the Softplus divided by beta. *y the output, or -1. */
static nn_status nn__ox_softplus(nn__ox_ctx *c, int x, nn_layer_desc *d, int *y)
{
    const nn__ox_val *xv = &c->vals[x];
    int p, k, z = x, where = -1, sp = -1, gt = -1, q, div = -1;
    double beta = 1, beta2 = 1, th = 0;
    *y = -1;
    for (p = 0; p < xv->ncons; p++) {
        k = xv->cons[p];
        if (nn__ox_op(c, k, "Where") && c->ox.nodes[k].nin == 3 && c->in[k][1] == x) where = k;
        else if (xv->ncons == 2 && nn__ox_op(c, k, "Mul") && nn__ox_operand(c, k, x, &beta)) z = c->out0[k];
    }
    if (where < 0 || xv->ncons != (z == x ? 3 : 2) || c->vals[z].ncons != (z == x ? 3 : 2)) return NN_OK;
    for (p = 0; p < c->vals[z].ncons; p++) {
        k = c->vals[z].cons[p];
        if (nn__ox_op(c, k, "Softplus") && c->ox.nodes[k].nin == 1) sp = k;
        else if (nn__ox_op(c, k, "Greater") && c->in[k][0] == z && nn__ox_operand(c, k, z, &th)) gt = k;
    }
    if (sp < 0 || gt < 0) return NN_OK;
    q = c->out0[sp];
    if (z != x) {
        div = nn__ox_sole(c, q);
        if (!nn__ox_op(c, div, "Div") || c->in[div][0] != q || !nn__ox_operand(c, div, q, &beta2)) return NN_OK;
        q = c->out0[div];
    }
    if (c->in[where][0] != c->out0[gt] || c->in[where][2] != q || nn__ox_sole(c, c->out0[gt]) != where ||
        nn__ox_sole(c, q) != where)
        return NN_OK;
    if (!(fabs(beta) <= FLT_MAX) || beta == 0 || beta2 != beta)
        return nn__ox_node_fail(c, div >= 0 ? div : where, NN_ERR_FORMAT, "a Softplus's beta %g (multiplying) "
                                "and %g (dividing): nn.h's is one finite number, not 0", beta, beta2);
    if (!(fabs(th) <= FLT_MAX) || th == 0)
        return nn__ox_node_fail(c, gt, NN_ERR_FORMAT, "a Softplus's threshold %g (nn.h's is finite, and 0 "
                                "stands for its default 20)", th);
    *d = nn_softplus((float)beta, (float)th);
    *y = c->out0[where];
    return NN_OK;
}

/* The layers whose graph forks from value x and joins again: GELU (exact, or the tanh
   one as nn_save_onnx and PyTorch 1.13 write it) and Softplus with its threshold.
   *d the layer and *y the value after it, or *y -1. */
static nn_status nn__ox_pattern(nn__ox_ctx *c, int x, nn_layer_desc *d, int *y)
{
    static const nn__ox_link ours[] = {   /* nn.h's order: x (1 + tanh(s (x + ((k x) x) x))) / 2 */
        { "Mul", 'k', 0.044715 }, { "Mul", 'x', 0 }, { "Mul", 'x', 0 }, { "Add", 'x', 0 },
        { "Mul", 'k', 0.7978845608028654 }, { "Tanh", '-', 0 }, { "Add", 'k', 1 }, { "Mul", 'x', 0 },
        { "Mul", 'k', 0.5 } };
    static const nn__ox_link torch[] = {  /* PyTorch's: k ((x x) x) */
        { "Mul", 'x', 0 }, { "Mul", 'x', 0 }, { "Mul", 'k', 0.044715 }, { "Add", 'x', 0 },
        { "Mul", 'k', 0.7978845608028654 }, { "Tanh", '-', 0 }, { "Add", 'k', 1 }, { "Mul", 'x', 0 },
        { "Mul", 'k', 0.5 } };
    nn_status st;
    *d = nn_gelu(0);
    if ((*y = nn__ox_gelu(c, x)) >= 0) return NN_OK;
    *d = nn_gelu(1);
    if ((st = nn__ox_chain(c, x, ours, 9, "a tanh GELU", y)) != NN_OK || *y >= 0 ||
        (st = nn__ox_chain(c, x, torch, 9, "a tanh GELU", y)) != NN_OK || *y >= 0)
        return st;
    return nn__ox_softplus(c, x, d, y);
}

static nn_status nn__ox_walk(nn__ox_ctx *c, int v, int emit, int depth, int *end, int *join);

static nn_status nn__ox_node_layers(nn__ox_ctx *c, int k, int emit, int *next);

/* A path that begins at node k: its layers, then the walk on. */
static nn_status nn__ox_path(nn__ox_ctx *c, int k, int emit, int depth, int *end, int *join)
{
    int next;
    nn_status st = nn__ox_node_layers(c, k, emit, &next);
    return st != NN_OK ? st : nn__ox_walk(c, next, emit, depth, end, join);
}

static int nn__ox_binary(nn__ox_ctx *c, int k)
{
    return c->dyn[k] && nn__ox_in(c, k, 0) && nn__ox_in(c, k, 1) && nn__ox_in(c, k, 0)->kind == NN__OX_DYN &&
           nn__ox_in(c, k, 1)->kind == NN__OX_DYN;
}

/* Where the two paths from the fork at value x meet: the Add reading both ends (kept
   in x's join, start and end). */
static nn_status nn__ox_join(nn__ox_ctx *c, int x, int depth)
{
    nn__ox_val *v = &c->vals[x];
    int p, joins[2];
    nn_status st;
    if (v->join >= 0) return NN_OK;
    for (p = 0; p < 2; p++) {
        int n = v->cons[p];
        if (nn__ox_binary(c, n)) {       /* the Add reads x itself: the identity path */
            v->start[p] = -1;
            v->end[p] = x;
            joins[p] = n;
        } else {
            v->start[p] = n;
            if ((st = nn__ox_path(c, n, 0, depth + 1, &v->end[p], &joins[p])) != NN_OK) return st;
        }
        if (joins[p] < 0)
            return nn__fail(NN_ERR_FORMAT, "onnx: the value '%.*s' is read by two nodes whose paths do not meet "
                            "again in an Add (nn.h nets are chains of residual blocks)", NN__OX_STR(v->name));
    }
    if (joins[0] != joins[1] || !nn__ox_op(c, joins[0], "Add") || v->end[0] == v->end[1])
        return nn__ox_node_fail(c, joins[1], NN_ERR_FORMAT, "joins paths that do not fork from one value (or "
                                "multiplies them): not a residual block");
    v->join = joins[0];
    return NN_OK;
}

/* Layers for node k, which reads value x; *next the value after them. */
static nn_status nn__ox_node_layers(nn__ox_ctx *c, int k, int emit, int *next)
{
    const nn__ox_node *nd = &c->ox.nodes[k];
    nn__ox_str op = nd->op;
    nn_layer_desc d;
    nn__ox_layer *L;
    nn__ox_val *x = nn__ox_in(c, k, 0);
    const nn__ox_tensor *w = nn__ox_const_in(c, k, 1);
    nn_status st;
    size_t i, j;
    *next = c->out0[k];
    memset(&d, 0, sizeof d);
    if (x && x->kind != NN__OX_DYN) { x = nn__ox_in(c, k, 1); w = nn__ox_const_in(c, k, 0); }
    if (nn__ox_str_is(op, "Relu")) d = nn_relu();
    else if (nn__ox_str_is(op, "LeakyRelu")) d = nn_leaky_relu(nn__ox_attr_float(nd, "alpha", 0.01f));
    else if (nn__ox_str_is(op, "Sigmoid")) d = nn_sigmoid();
    else if (nn__ox_str_is(op, "Tanh")) d = nn_tanh();
    else if (nn__ox_str_is(op, "Softplus")) d = nn_softplus(1.0f, 0.0f);
    else if (nn__ox_str_is(op, "Gelu")) {
        const nn__ox_attr *a = nn__ox_attr_get(nd, "approximate");
        if (a && !nn__ox_str_is(a->s, "none") && !nn__ox_str_is(a->s, "tanh"))
            return nn__ox_node_fail(c, k, NN_ERR_FORMAT, "approximate '%.*s'", NN__OX_STR(a->s));
        d = nn_gelu(a && nn__ox_str_is(a->s, "tanh"));
    } else if (nn__ox_str_is(op, "Clip")) {
        double lo = -FLT_MAX, hi = FLT_MAX, v;
        const nn__ox_attr *amin = nn__ox_attr_get(nd, "min"), *amax = nn__ox_attr_get(nd, "max");
        if (amin) lo = amin->f;
        if (amax) hi = amax->f;
        for (i = 1; i < 3; i++) {
            if ((int)i >= nd->nin || !nd->in[i].n) continue;
            if (!nn__ox_scalar(nn__ox_const_in(c, k, (int)i), &v) || !(v == v))
                return nn__ox_node_fail(c, k, NN_ERR_FORMAT, "a bound that is not a constant number");
            if (i == 1) lo = v; else hi = v;
        }
        if (lo < -FLT_MAX) lo = -FLT_MAX;
        if (hi > FLT_MAX) hi = FLT_MAX;
        if (!(lo < hi)) return nn__ox_node_fail(c, k, NN_ERR_FORMAT, "bounds [%g, %g] (nn.h needs min < max)", lo, hi);
        if (lo == -FLT_MAX && hi == FLT_MAX) return NN_OK;
        d = lo == 0.0 && hi == FLT_MAX ? nn_relu() : nn_hardtanh((float)lo, (float)hi);
    } else if (nn__ox_str_is(op, "Dropout")) {
        double ratio = nn__ox_attr_float(nd, "ratio", 0.5f), mode = 0;
        if (nd->nin > 1 && nd->in[1].n && !nn__ox_scalar(nn__ox_const_in(c, k, 1), &ratio))
            return nn__ox_node_fail(c, k, NN_ERR_FORMAT, "a ratio that is not a constant");
        if (nd->nin > 2 && nd->in[2].n && (!nn__ox_scalar(nn__ox_const_in(c, k, 2), &mode) || mode != 0))
            return nn__ox_node_fail(c, k, NN_ERR_FORMAT, "training_mode that is not a constant false");
        if (!(ratio >= 0 && ratio < 1)) return nn__ox_node_fail(c, k, NN_ERR_FORMAT, "ratio %g", ratio);
        if (ratio == 0) return NN_OK;
        d = nn_dropout((float)ratio);
    } else if (nn__ox_str_is(op, "Identity")) {
        return NN_OK;
    } else if (nn__ox_str_is(op, "Pad")) {   /* nothing to pad, or taken into the AveragePool */
        if (!c->pads[k][0] && !c->pads[k][1] && !c->pads[k][2] && !c->pads[k][3]) return NN_OK;
        if (c->fused[k] && c->vals[c->out0[k]].nread == 1) return NN_OK;
        return nn__ox_node_fail(c, k, NN_ERR_FORMAT, "pads other than into an AveragePool (nn.h pads inside its "
                                "convolutions and pools)");
    } else if (nn__ox_str_is(op, "Mul") || nn__ox_str_is(op, "Div")) {
        double v;
        if (!nn__ox_scalar(w, &v) || !(fabs(v) <= FLT_MAX) || (op.p[0] == 'D' && v == 0))
            return nn__ox_node_fail(c, k, NN_ERR_FORMAT, "%s a tensor or by %s (nn.h scales by one finite number)",
                                    op.p[0] == 'D' ? "divides by" : "multiplies by", "a value that is not finite");
        d = nn_scale((float)(op.p[0] == 'D' ? 1.0 / v : v));
    } else if (nn__ox_str_is(op, "Add")) {
        return nn__ox_node_fail(c, k, NN_ERR_FORMAT, "adds a constant; nn.h adds one only as the bias after a "
                                "MatMul");
    } else if (nn__ox_str_is(op, "Erf")) {
        return nn__ox_node_fail(c, k, NN_ERR_FORMAT, "Erf outside the pattern of an exact GELU");
    } else if (nn__ox_str_is(op, "Greater") || nn__ox_str_is(op, "Where")) {
        return nn__ox_node_fail(c, k, NN_ERR_FORMAT, "%.*s outside the pattern of a Softplus with its threshold",
                                NN__OX_STR(op));
    } else if (nn__ox_str_is(op, "Softmax") || nn__ox_str_is(op, "LogSoftmax")) {
        return nn__ox_node_fail(c, k, NN_ERR_FORMAT, "nn.h nets output logits, without a softmax; export the "
                                "model without it (the net's output would differ from the model's)");
    } else if (nn__ox_str_is(op, "BatchNormalization")) {
        const nn__ox_tensor *t[4];
        double eps = nn__ox_attr_float(nd, "epsilon", 1e-5f), mom = nn__ox_attr_float(nd, "momentum", 0.9f);
        if (nn__ox_attr_int(nd, "training_mode", 0) || !nn__ox_attr_int(nd, "spatial", 1))
            return nn__ox_node_fail(c, k, NN_ERR_FORMAT, "training_mode or spatial 0 (not supported)");
        for (i = 0; i < 4; i++) {
            t[i] = nn__ox_const_in(c, k, (int)i + 1);
            if (!t[i] || !t[i]->f || t[i]->count != (size_t)x->d[1])
                return nn__ox_node_fail(c, k, NN_ERR_FORMAT, "input %d is not a float32 constant of %lld values",
                                        (int)i + 1, (long long)x->d[1]);
        }
        if (!(eps > 0) || !(mom >= 0 && mom < 1))
            return nn__ox_node_fail(c, k, NN_ERR_FORMAT, "epsilon %g or momentum %g", eps, mom);
        d = nn_batchnorm();
        d.eps = (float)eps;
        d.momentum = (float)(1.0 - mom);   /* ONNX keeps the fraction of the old statistics */
        if (!emit) return NN_OK;
        if ((st = nn__ox_emit(c, d, &L)) != NN_OK) return st;
        L->w = t[0]->f; L->b = t[1]->f; L->rm = t[2]->f; L->rv = t[3]->f;
        L->nw = L->nb = L->nr = t[0]->count;
        nn__ox_name(L, t[0]->name, ".weight");
        return NN_OK;
    } else if (nn__ox_str_is(op, "Conv")) {
        const nn__ox_tensor *b = nn__ox_const_in(c, k, 2);
        if (!emit) return NN_OK;
        if ((st = nn__ox_emit(c, c->descs[k], &L)) != NN_OK) return st;
        L->w = w->f; L->nw = w->count;
        if (b) { L->b = b->f; L->nb = b->count; }
        nn__ox_name(L, w->name, ".weight");
        return NN_OK;
    } else if (nn__ox_str_is(op, "Gemm") || nn__ox_str_is(op, "MatMul")) {
        int gemm = op.n == 4, tb = gemm && nn__ox_attr_int(nd, "transB", 0), add = -1;
        const nn__ox_tensor *b = gemm ? nn__ox_const_in(c, k, 2) : NULL;
        float alpha = gemm ? nn__ox_attr_float(nd, "alpha", 1.0f) : 1.0f, beta = nn__ox_attr_float(nd, "beta", 1.0f);
        size_t out = (size_t)c->descs[k].out, in = (size_t)x->d[1];
        float *wt, *bias = NULL;
        if (gemm && nd->nin > 2 && nd->in[2].n && (!b || !b->f || (b->count != 1 && b->count != out) ||
                                                    (b->ndim == 2 && b->dims[0] != 1)))
            return nn__ox_node_fail(c, k, NN_ERR_FORMAT, "a bias that is not a float32 constant of 1 or %zu values "
                                    "(one that varies along the batch is not supported)", out);
        if (!gemm) {                   /* MatMul + Add of a constant vector: a Linear with bias */
            add = nn__ox_sole(c, c->out0[k]);
            if (nn__ox_op(c, add, "Add") && c->out0[k] != c->output) {
                int other = nn__ox_other(c, add, c->out0[k]);
                b = other >= 0 && c->vals[other].kind == NN__OX_CONST ? c->vals[other].t : NULL;
                if (b && b->f && b->count == out && (b->ndim == 1 || (b->ndim == 2 && b->dims[0] == 1))) *next = c->out0[add];
                else b = NULL, add = -1;
            } else add = -1;
            beta = 1.0f;
        }
        if (!emit) return NN_OK;
        d = c->descs[k];
        d.no_bias = !b;
        if ((st = nn__ox_emit(c, d, &L)) != NN_OK) return st;
        if (!(wt = (float *)nn__ox_alloc(&c->ox, out * in, sizeof *wt)) ||
            (b && !(bias = (float *)nn__ox_alloc(&c->ox, out, sizeof *bias))))
            return NN_ERR_NOMEM;
        for (i = 0; i < out; i++)      /* nn.h's weight is out x in */
            for (j = 0; j < in; j++) wt[i * in + j] = alpha * (tb ? w->f[i * in + j] : w->f[j * out + i]);
        for (i = 0; b && i < out; i++) bias[i] = beta * b->f[b->count == 1 ? 0 : i];
        L->w = wt; L->nw = out * in;
        L->b = bias; L->nb = b ? out : 0;
        if (tb && alpha == 1.0f) nn__ox_name(L, w->name, ".weight");
        else if (b && beta == 1.0f && b->count == out) nn__ox_name(L, b->name, ".bias");
        return NN_OK;
    } else {                           /* one layer (or none), its desc from the shape pass */
        if (emit && c->descs[k].kind) return nn__ox_emit(c, c->descs[k], NULL);
        return NN_OK;
    }
    return emit ? nn__ox_emit(c, d, NULL) : NN_OK;
}

/* Follows the computation from value v: node after node, a fork opening a residual
   block (or a GELU), until the graph's output (*join -1) or an Add that joins v's path
   to another (*end the value read by it, *join the Add). Emits the layers if asked. */
static nn_status nn__ox_walk(nn__ox_ctx *c, int v, int emit, int depth, int *end, int *join)
{
    nn_status st;
    if (depth > NN__OX_MAX_NEST)
        return nn__fail(NN_ERR_FORMAT, "onnx: residual blocks nested more than %d deep", NN__OX_MAX_NEST);
    for (;;) {
        nn__ox_val *x = &c->vals[v];
        nn_layer_desc d;
        int k, next, g;
        *end = v;
        *join = -1;
        if (x->ncons == 0) {
            if (v == c->output) return NN_OK;
            return nn__fail(NN_ERR_FORMAT, "onnx: the value '%.*s' is computed and not used, and is not the "
                            "graph's output", NN__OX_STR(x->name));
        }
        if (v == c->output)
            return nn__fail(NN_ERR_FORMAT, "onnx: the graph's output '%.*s' is also read by a node",
                            NN__OX_STR(x->name));
        if (x->ncons == 1) {
            k = x->cons[0];
            if (nn__ox_binary(c, k)) {
                *join = k;
                return NN_OK;
            }
            if ((st = nn__ox_node_layers(c, k, emit, &next)) != NN_OK) return st;
            v = next;
            continue;
        }
        if ((st = nn__ox_pattern(c, v, &d, &g)) != NN_OK) return st;
        if (g >= 0) {
            if (emit && (st = nn__ox_emit(c, d, NULL)) != NN_OK) return st;
            v = g;
            continue;
        }
        if (x->ncons > 2)
            return nn__fail(NN_ERR_FORMAT, "onnx: the value '%.*s' is read by %d nodes (nn.h nets are chains of "
                            "residual blocks: at most two)", NN__OX_STR(x->name), x->ncons);
        {
            int e, j, main_p, relu, out, pe, pj;
            if ((st = nn__ox_join(c, v, depth)) != NN_OK) return st;
            j = x->join;
            out = c->out0[j];
            relu = out != c->output && nn__ox_op(c, nn__ox_sole(c, out), "Relu");
            if (emit) {
                /* the main path: the one the Add reads first, unless that is the identity */
                main_p = x->end[0] == c->in[j][0] ? 0 : 1;
                if (x->start[main_p] < 0) main_p = 1 - main_p;
                if ((st = nn__ox_emit(c, nn_block(), NULL)) != NN_OK) return st;
                for (e = 0; e < 2; e++) {
                    int p = e ? 1 - main_p : main_p;
                    if (x->start[p] < 0) continue;
                    if (e && (st = nn__ox_emit(c, nn_shortcut(), NULL)) != NN_OK) return st;
                    if ((st = nn__ox_path(c, x->start[p], 1, depth + 1, &pe, &pj)) != NN_OK) return st;
                }
                if ((st = nn__ox_emit(c, nn_block_end(relu), NULL)) != NN_OK) return st;
            }
            v = relu ? c->out0[nn__ox_sole(c, out)] : out;
        }
    }
}

static int nn__ox_cmp_name(const void *a, const void *b) { return strcmp((const char *)a, (const char *)b); }

/* Layer names: the weights' prefixes where every one is a valid nn.h name and no two
   parameter names clash; otherwise the index names for all. */
static nn_status nn__ox_names(nn__ox_ctx *c)
{
    char (*names)[NN_MAX_NAME];
    int i, n = 0, clash = 0;
    if (!(names = (char (*)[NN_MAX_NAME])nn__ox_alloc(&c->ox, (size_t)c->nlayers + 1, NN_MAX_NAME))) return NN_ERR_NOMEM;
    for (i = 0; i < c->nlayers; i++) {
        if (!c->layers[i].w) continue;
        if (c->layers[i].name[0]) memcpy(names[n++], c->layers[i].name, NN_MAX_NAME);
        else snprintf(names[n++], NN_MAX_NAME, "%d", i);
    }
    qsort(names, (size_t)n, NN_MAX_NAME, nn__ox_cmp_name);
    for (i = 1; i < n; i++) clash |= !strcmp(names[i - 1], names[i]);
    for (i = 0; i < c->nlayers; i++) {
        if (clash || !c->layers[i].w) c->layers[i].name[0] = '\0';
        c->layers[i].desc.name = c->layers[i].name[0] ? c->layers[i].name : NULL;
    }
    return NN_OK;
}

static nn_status nn__ox_copy(nn_param *p, const float *v, size_t n, int layer)
{
    if (!v && !p) return NN_OK;
    if (!v || !p || p->size != n)
        return nn__fail(NN_ERR_FORMAT, "onnx: layer %d: %zu weight values for a parameter of %zu", layer, n,
                        p ? p->size : 0);
    memcpy(p->value, v, n * sizeof *v);
    return NN_OK;
}

/* nn_load_onnx_memory, with the graph inputs after the first bound to the TensorProtos
   binds[0..nbinds) (in the order of the graph's inputs that are not initializers):
   the ONNX node tests hand weights in as inputs. */
static nn_net *nn__ox_load(const void *data, size_t size, int max_batch, const void *const *binds,
                           const size_t *bind_sizes, int nbinds)
{
    nn__ox_ctx c;
    nn_net *net = NULL;
    nn__ox_vi *in = NULL;
    int i, j, k, end, join, ninput = 0;
    int64_t per = 1;
    nn_status st;
    memset(&c, 0, sizeof c);
    if (!data) { nn__fail(NN_ERR_ARG, "nn_load_onnx_memory: data is NULL"); return NULL; }
    if (max_batch <= 0) {
        nn__fail(NN_ERR_ARG, "nn_load_onnx_memory: batch size %d, expected > 0", max_batch);
        return NULL;
    }
    if (nn__ox_parse(&c.ox, data, size) != NN_OK) goto fail;
    if (nbinds > 0) {                  /* bound inputs become initializers */
        nn__ox_tensor *inits = (nn__ox_tensor *)nn__ox_alloc(&c.ox, (size_t)c.ox.ninits + (size_t)nbinds,
                                                             sizeof *inits);
        int first = 1;
        if (!inits) goto fail;
        memcpy(inits, c.ox.inits, (size_t)c.ox.ninits * sizeof *inits);
        for (i = 0, j = 0; i < c.ox.ninputs && j < nbinds; i++) {
            for (k = 0; k < c.ox.ninits && !nn__ox_str_eq(c.ox.inputs[i].name, c.ox.inits[k].name); k++) {}
            if (k < c.ox.ninits) continue;
            if (first) { first = 0; continue; }
            if (nn__ox_tensor_parse(&c.ox, (const unsigned char *)binds[j], bind_sizes[j], &inits[c.ox.ninits + j])
                != NN_OK) goto fail;
            inits[c.ox.ninits + j].name = c.ox.inputs[i].name;
            j++;
        }
        c.ox.inits = inits;
        c.ox.ninits += j;
    }
    if (nn__ox_graph(&c) != NN_OK) goto fail;
    for (i = 0; i < c.ox.ninputs; i++) {
        int id = nn__ox_find(c.keys, c.nvals, c.ox.inputs[i].name);
        if (c.vals[id].producer <= -2) { ninput++; c.input = id; in = &c.ox.inputs[i]; }
    }
    if (ninput != 1 || c.ox.noutputs != 1) {
        nn__fail(NN_ERR_FORMAT, "onnx: the graph has %d inputs (besides its initializers) and %d outputs; nn.h "
                 "nets have one of each", ninput, c.ox.noutputs);
        goto fail;
    }
    if (in->elem != NN__OX_FLOAT || !in->has_shape || in->ndim < 1 || in->ndim > 4) {
        nn__fail(NN_ERR_FORMAT, "onnx: the input '%.*s' is not a float32 tensor of 1 to 4 known dimensions "
                 "(batch first)", NN__OX_STR(in->name));
        goto fail;
    }
    c.batch = in->dims[0] > 0 ? in->dims[0] : NN__OX_BATCH;
    c.vals[c.input].kind = NN__OX_DYN;
    c.vals[c.input].rank = in->ndim;
    c.vals[c.input].d[0] = c.batch;
    for (i = 1; i < 4; i++) {
        int64_t d = i < in->ndim ? in->dims[i] : 1;
        if (d < 1 || d > INT_MAX || (per *= d) > INT_MAX) {
            nn__fail(NN_ERR_FORMAT, "onnx: the input '%.*s' has a dimension %d that is unknown, 0 or too large "
                     "(nn.h needs every size but the batch)", NN__OX_STR(in->name), i);
            goto fail;
        }
        c.vals[c.input].d[i] = d;
    }
    c.output = nn__ox_find(c.keys, c.nvals, c.ox.outputs[0].name);
    if (!(c.descs = (nn_layer_desc *)nn__ox_alloc(&c.ox, (size_t)c.ox.nnodes + 1, sizeof *c.descs)) ||
        !(c.pads = (int64_t (*)[4])nn__ox_alloc(&c.ox, (size_t)c.ox.nnodes + 1, sizeof *c.pads)) ||
        !(c.fused = (int *)nn__ox_alloc(&c.ox, (size_t)c.ox.nnodes + 1, sizeof(int))) ||
        nn__ox_shapes(&c, c.descs) != NN_OK)
        goto fail;
    if (c.output < 0 || c.vals[c.output].kind != NN__OX_DYN) {
        nn__fail(NN_ERR_FORMAT, "onnx: the graph's output '%.*s' is not computed from its input",
                 NN__OX_STR(c.ox.outputs[0].name));
        goto fail;
    }
    for (k = 0; k < c.ox.nnodes; k++)   /* the readers of each computed value */
        for (j = 0; c.dyn[k] && j < c.ox.nodes[k].nin; j++)
            if (c.in[k][j] >= 0 && c.vals[c.in[k][j]].kind == NN__OX_DYN) c.vals[c.in[k][j]].ncons++;
    for (i = 0; i < c.nvals; i++) {
        if (!(c.vals[i].cons = (int *)nn__ox_alloc(&c.ox, (size_t)c.vals[i].ncons, sizeof(int)))) goto fail;
        c.vals[i].ncons = 0;
    }
    for (k = 0; k < c.ox.nnodes; k++)
        for (j = 0; c.dyn[k] && j < c.ox.nodes[k].nin; j++)
            if (c.in[k][j] >= 0 && c.vals[c.in[k][j]].kind == NN__OX_DYN) {
                nn__ox_val *v = &c.vals[c.in[k][j]];
                v->cons[v->ncons++] = k;
            }
    c.cap = 4 * c.ox.nnodes + 4;
    if (!(c.layers = (nn__ox_layer *)nn__ox_alloc(&c.ox, (size_t)c.cap, sizeof *c.layers))) goto fail;
    if (nn__ox_walk(&c, c.input, 1, 0, &end, &join) != NN_OK) goto fail;
    if (join >= 0 || end != c.output) {
        nn__ox_node_fail(&c, join >= 0 ? join : 0, NN_ERR_FORMAT, "joins the input's path to a value that does not "
                         "fork from it");
        goto fail;
    }
    if (!c.nlayers && nn__ox_emit(&c, nn_scale(1.0f), NULL) != NN_OK) goto fail;   /* y = x: a net needs a layer */
    if (nn__ox_names(&c) != NN_OK) goto fail;
    {
        const int64_t *d = c.vals[c.input].d;
        if (!(net = nn_net_new(nn_shape3((int)d[1], (int)d[2], (int)d[3])))) goto fail;
    }
    for (i = 0; i < c.nlayers; i++)
        if (nn__prefix_error("onnx", nn_add(net, c.layers[i].desc)) != NN_OK) goto fail;
    if (nn__prefix_error("onnx", nn_build(net, max_batch, 0)) != NN_OK) goto fail;
    for (i = 0; i < c.nlayers; i++) {
        const nn__ox_layer *L = &c.layers[i];
        const nn_layer *nl = nn_get_layer(net, i);
        if (!L->w) continue;
        if ((st = nn__ox_copy(nl->weight, L->w, L->nw, i)) != NN_OK || (st = nn__ox_copy(nl->bias, L->b, L->nb, i)) != NN_OK ||
            (st = nn__ox_copy(nl->running_mean, L->rm, L->nr, i)) != NN_OK ||
            (st = nn__ox_copy(nl->running_var, L->rv, L->nr, i)) != NN_OK)
            goto fail;
    }
    nn_set_training(net, 0);
    nn__ox_free(&c.ox);
    return net;
fail:
    nn_net_free(net);
    nn__ox_free(&c.ox);
    return NULL;
}

NNDEF nn_net *nn_load_onnx_memory(const void *data, size_t size, int max_batch)
{
    nn__error_clear();
    return nn__ox_load(data, size, max_batch, NULL, NULL, 0);
}

#ifndef NN_NO_STDIO
NNDEF nn_net *nn_load_onnx(const char *path, int max_batch)
{
    nn__error_clear();
    unsigned char *data;
    size_t size;
    nn_net *net;
    if (!path) { nn__fail(NN_ERR_ARG, "nn_load_onnx: path is NULL"); return NULL; }
    if (max_batch <= 0) {
        nn__fail(NN_ERR_ARG, "nn_load_onnx: batch size %d, expected > 0", max_batch);
        return NULL;
    }
    if (nn__read_file(path, &data, &size) != NN_OK) return NULL;
    net = nn__ox_load(data, size, max_batch, NULL, NULL, 0);
    if (!net) nn__prefix_error(path, NN_ERR_FORMAT);
    nn__free(data);
    return net;
}
#endif

/* ---- Protocol buffers: writing the wire format ---- */

/* A field is a tag, (field number << 3) | wire type (0 varint, 2 length-delimited,
   5 fixed32), then its value; varints hold 7 bits a byte, the low ones first, with the
   high bit set on every byte but the last (a negative int64 takes 10 bytes). A
   submessage is written in place after its tag and closed by inserting its length in
   front of it, which moves its bytes right by the 1 to 10 bytes of that length: a byte
   moves once for each message around it (three at most here, a few for the shapes). */

static size_t nn__pbw_encode(unsigned char *out, uint64_t v)
{
    size_t n = 0;
    do {
        out[n++] = (unsigned char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    return n;
}

static void nn__pbw_varint(nn__buf *b, uint64_t v)
{
    unsigned char bytes[10];
    nn__buf_put(b, bytes, nn__pbw_encode(bytes, v));
}

static void nn__pbw_tag(nn__buf *b, int field, int wire) { nn__pbw_varint(b, (uint64_t)field << 3 | (uint64_t)wire); }

static void nn__pbw_int(nn__buf *b, int field, int64_t v)
{
    nn__pbw_tag(b, field, 0);
    nn__pbw_varint(b, (uint64_t)v);
}

static void nn__pbw_float(nn__buf *b, int field, float v)
{
    nn__pbw_tag(b, field, 5);
    nn__buf_put_f32(b, &v, 1);
}

static void nn__pbw_string(nn__buf *b, int field, const char *s)
{
    nn__pbw_tag(b, field, 2);
    nn__pbw_varint(b, strlen(s));
    nn__buf_put(b, s, strlen(s));
}

/* Opens a submessage: returns where its body begins, for nn__pbw_close. */
static size_t nn__pbw_open(nn__buf *b, int field)
{
    nn__pbw_tag(b, field, 2);
    return b->len;
}

static void nn__pbw_close(nn__buf *b, size_t start)
{
    unsigned char len[10];
    size_t body = b->len - start, n = nn__pbw_encode(len, body);
    nn__buf_put(b, len, n);   /* room for the length at the end, then the body moves */
    if (b->failed) return;
    memmove(b->data + start + n, b->data + start, body);
    memcpy(b->data + start, len, n);
}

/* ---- Writing a net as an ONNX model ---- */

/* One pass over the layers appends each layer's nodes to one buffer and its tensors
   (parameters, running statistics, the constants of the decompositions) to another;
   the model is then the graph of those nodes and initializers with the input and the
   output, and the opset. The pass runs twice: the first only counts the nodes, so that
   the second can call the output of the last one "output". A tensor of the graph is
   N x F (rank 2) or N x C x H x W (rank 4); a (C, 1, 1) shape of nn.h is either, as the
   node that made it left it, and a Flatten or Reshape node converts where the next
   operator needs the other form. Tensors are named "<layer>/<Op>" (then "_2", "_3", ...
   within a layer), constants "<layer>/<what>", with <layer> the layer's name or index
   ('/' is in no parameter name). Fields are written in field-number order. */

#define NN__OX_PREFIX (NN_MAX_NAME + 12)        /* a layer's name, "#" and its index */
#define NN__OX_NAME (NN__OX_PREFIX + 36)        /* and "/", an operator, "_" and a count */
#define NN__OX_OPSET 13
#define NN__OX_IR_VERSION 7          /* the IR of ONNX 1.8, the first with opset 13 */

typedef struct nn__oxw {
    nn__buf nodes, inits;            /* GraphProto's node and initializer fields */
    int dry;                         /* the counting pass: nothing is written */
    int count, total;                /* nodes so far; in all (0 in the counting pass) */
    int sub;                         /* nodes of the current layer so far */
    size_t node;                     /* the body of the node being written */
    char prefix[NN__OX_PREFIX];      /* the current layer's name in the graph */
    char y[NN__OX_NAME];             /* the output of the last node */
} nn__oxw;

/* Copies a name (with memmove: a compiler cannot tell that two entries of the names
   table never overlap, and warns about strcpy). */
static void nn__oxw_copy(char *dst, const char *src) { memmove(dst, src, strlen(src) + 1); }

/* Starts node op (NodeProto: input 1, output 2, name 3, op_type 4, attribute 5) with
   nin inputs (names) and one output, whose name it leaves in ox->y; the inputs are
   written first, so ox->y may be one of them. Attributes follow; nn__oxw_end closes it. */
static void nn__oxw_node(nn__oxw *ox, const char *op, int nin, ...)
{
    va_list ap;
    int i;
    if (!ox->dry) ox->node = nn__pbw_open(&ox->nodes, 1);   /* GraphProto.node */
    va_start(ap, nin);
    for (i = 0; i < nin; i++) {
        const char *in = va_arg(ap, const char *);
        if (!ox->dry) nn__pbw_string(&ox->nodes, 1, in);
    }
    va_end(ap);
    ox->sub++;
    if (++ox->count == ox->total) snprintf(ox->y, sizeof ox->y, "output");
    else if (ox->sub == 1) snprintf(ox->y, sizeof ox->y, "%s/%s", ox->prefix, op);
    else snprintf(ox->y, sizeof ox->y, "%s/%s_%d", ox->prefix, op, ox->sub);
    if (ox->dry) return;
    nn__pbw_string(&ox->nodes, 2, ox->y);
    nn__pbw_string(&ox->nodes, 3, ox->y);
    nn__pbw_string(&ox->nodes, 4, op);
}

static void nn__oxw_end(nn__oxw *ox) { if (!ox->dry) nn__pbw_close(&ox->nodes, ox->node); }

/* An attribute of the open node (AttributeProto: name 1, f 2, i 3, ints 8, type 20 with
   FLOAT 1, INT 2, INTS 7): a float, one int (n = 0) or n ints. */
static void nn__oxw_attr(nn__oxw *ox, const char *name, int type, float f, int n, const int64_t *v)
{
    size_t at;
    int i;
    if (ox->dry) return;
    at = nn__pbw_open(&ox->nodes, 5);
    nn__pbw_string(&ox->nodes, 1, name);
    if (type == 1) nn__pbw_float(&ox->nodes, 2, f);
    if (type == 2) nn__pbw_int(&ox->nodes, 3, v[0]);
    for (i = 0; type == 7 && i < n; i++) nn__pbw_int(&ox->nodes, 8, v[i]);
    nn__pbw_int(&ox->nodes, 20, type);
    nn__pbw_close(&ox->nodes, at);
}

static void nn__oxw_int(nn__oxw *ox, const char *name, int64_t v) { nn__oxw_attr(ox, name, 2, 0.0f, 0, &v); }
static void nn__oxw_float(nn__oxw *ox, const char *name, float v) { nn__oxw_attr(ox, name, 1, v, 0, NULL); }
static void nn__oxw_ints(nn__oxw *ox, const char *name, int64_t a, int64_t b)
{
    int64_t v[2];
    v[0] = a; v[1] = b;
    nn__oxw_attr(ox, name, 7, 0.0f, 2, v);
}

/* An initializer (TensorProto: dims 1, data_type 2 with FLOAT 1 and INT64 7, name 8,
   raw_data 9, little-endian): float32 values v, or n copies of fill where v is NULL; or
   (i64 not NULL, ndim 1) int64 values. */
static void nn__oxw_tensor(nn__oxw *ox, const char *name, int ndim, const int *shape, const float *v,
                          float fill, const int64_t *i64)
{
    size_t at, n = 1, i;
    int d, k;
    if (ox->dry) return;
    at = nn__pbw_open(&ox->inits, 5);   /* GraphProto.initializer */
    for (d = 0; d < ndim; d++) {
        nn__pbw_int(&ox->inits, 1, shape[d]);
        n *= (size_t)shape[d];
    }
    nn__pbw_int(&ox->inits, 2, i64 ? 7 : 1);
    nn__pbw_string(&ox->inits, 8, name);
    nn__pbw_tag(&ox->inits, 9, 2);
    nn__pbw_varint(&ox->inits, n * (i64 ? 8 : 4));
    for (i = 0; i64 && i < n; i++) {
        unsigned char le[8];
        for (k = 0; k < 8; k++) le[k] = (unsigned char)((uint64_t)i64[i] >> (8 * k));
        nn__buf_put(&ox->inits, le, 8);
    }
    if (!i64 && v) nn__buf_put_f32(&ox->inits, v, n);
    for (i = 0; !i64 && !v && i < n; i++) nn__buf_put_f32(&ox->inits, &fill, 1);
    nn__pbw_close(&ox->inits, at);
}

static void nn__oxw_param(nn__oxw *ox, const nn_param *p)
{
    if (p) nn__oxw_tensor(ox, p->name, p->ndim, p->shape, p->value, 0.0f, NULL);
}

/* A float32 scalar "<layer>/<what>", its name in name. */
static void nn__oxw_scalar(nn__oxw *ox, char *name, const char *what, float v)
{
    snprintf(name, NN__OX_NAME, "%s/%s", ox->prefix, what);
    nn__oxw_tensor(ox, name, 0, NULL, NULL, v, NULL);
}

/* y = op(x) and y = op(x, constant). */
static void nn__oxw_unary(nn__oxw *ox, const char *op, const char *x)
{
    nn__oxw_node(ox, op, 1, x);
    nn__oxw_end(ox);
}

static void nn__oxw_with(nn__oxw *ox, const char *op, const char *x, const char *what, float v)
{
    char c[NN__OX_NAME];
    nn__oxw_scalar(ox, c, what, v);
    nn__oxw_node(ox, op, 2, x, c);
    nn__oxw_end(ox);
}

/* x as rank 2 (N x F, from N x F x 1 x 1) or rank 4 (N x F x 1 x 1); returns its name. */
static const char *nn__oxw_rank(nn__oxw *ox, const char *x, int *rank, int want, int features)
{
    char shape[NN__OX_NAME];
    int64_t dims[4];
    int four = 4;
    if (*rank == want) return x;
    *rank = want;
    if (want == 2) {
        nn__oxw_node(ox, "Flatten", 1, x);
        nn__oxw_int(ox, "axis", 1);
    } else {
        dims[0] = -1; dims[1] = features; dims[2] = dims[3] = 1;
        snprintf(shape, sizeof shape, "%s/shape", ox->prefix);
        nn__oxw_tensor(ox, shape, 1, &four, NULL, 0.0f, dims);
        nn__oxw_node(ox, "Reshape", 2, x, shape);
    }
    nn__oxw_end(ox);
    return ox->y;
}

/* MaxPool / AveragePool. ONNX's ceil_mode has no PyTorch correction (a last window that
   would start in the right padding is dropped), so ceil_mode is written only where it
   adds a window on some axis and ONNX's count is nn.h's on both; where the correction
   took that window away on the other axis, the added windows come from end padding
   instead. An AvgPool2d counting its padding whose last window runs past the padding
   (nn.h's divisor: the window clipped to the padded input) gets its padding from a Pad
   node and counts only the cells of the padded image, as PyTorch's exporter does. */
static void nn__oxw_pool(nn__oxw *ox, const nn_layer *L, const char *x)
{
    const nn_layer_desc *d = &L->desc;
    int in[2], out[2], k[2], s[2], p[2], extra[2] = {0, 0}, adds = 0, ceil_fits = 1, ax, four = 8;
    int avg = d->kind == NN_AVGPOOL2D, include = avg && !d->exclude_pad;
    int64_t pads[8];
    in[0] = L->in.h; in[1] = L->in.w; out[0] = L->out.h; out[1] = L->out.w;
    k[0] = d->kernel_h; k[1] = d->kernel_w; s[0] = d->stride_h; s[1] = d->stride_w;
    p[0] = d->pad_h; p[1] = d->pad_w;
    for (ax = 0; ax < 2; ax++) {
        int span = in[ax] + 2 * p[ax] - k[ax];
        if (out[ax] > span / s[ax] + 1) { adds = 1; extra[ax] = s[ax] - span % s[ax]; }
        if ((span + s[ax] - 1) / s[ax] + 1 != out[ax]) ceil_fits = 0;
    }
    if (include && adds && (p[0] || p[1])) {
        char name[NN__OX_NAME];
        memset(pads, 0, sizeof pads);
        pads[2] = pads[6] = p[0];
        pads[3] = pads[7] = p[1];
        snprintf(name, sizeof name, "%s/pads", ox->prefix);
        nn__oxw_tensor(ox, name, 1, &four, NULL, 0.0f, pads);
        nn__oxw_node(ox, "Pad", 2, x, name);
        nn__oxw_end(ox);
        x = ox->y;
        p[0] = p[1] = 0;
    }
    nn__oxw_node(ox, avg ? "AveragePool" : "MaxPool", 1, x);
    nn__oxw_ints(ox, "kernel_shape", k[0], k[1]);
    pads[0] = p[0]; pads[1] = p[1];
    pads[2] = p[0] + (adds && !ceil_fits ? extra[0] : 0);
    pads[3] = p[1] + (adds && !ceil_fits ? extra[1] : 0);
    nn__oxw_attr(ox, "pads", 7, 0.0f, 4, pads);
    nn__oxw_ints(ox, "strides", s[0], s[1]);
    if (adds && ceil_fits) nn__oxw_int(ox, "ceil_mode", 1);
    if (include && !adds) nn__oxw_int(ox, "count_include_pad", 1);
    nn__oxw_end(ox);
}

/* The layer's name in the graph: its name or index, with "#<index>" where an earlier
   layer has the same (a name on a layer without parameters may repeat). */
static void nn__oxw_base(const nn_net *net, int i, char *out)
{
    if (net->layers[i].name[0]) snprintf(out, NN__OX_PREFIX, "%s", net->layers[i].name);
    else snprintf(out, NN__OX_PREFIX, "%d", i);
}

static void nn__oxw_prefix(const nn_net *net, nn__oxw *ox, int i)
{
    char other[NN__OX_PREFIX];
    int j;
    nn__oxw_base(net, i, ox->prefix);
    for (j = 0; j < i; j++) {
        nn__oxw_base(net, j, other);
        if (strcmp(other, ox->prefix)) continue;
        if (net->layers[i].name[0]) snprintf(ox->prefix, sizeof ox->prefix, "%s#%d", net->layers[i].name, i);
        else snprintf(ox->prefix, sizeof ox->prefix, "%d#%d", i, i);
        return;
    }
}

/* The nodes of layer i, which reads x (rank *rank) and leaves its output's name in y. */
static void nn__oxw_layer(const nn_net *net, nn__oxw *ox, int i, const char *x, int *rank, char *y)
{
    const nn_layer *L = &net->layers[i];
    const nn_layer_desc *d = &L->desc;
    char a[NN__OX_NAME], b[NN__OX_NAME], c[NN__OX_NAME];
    int C = L->in.c;
    switch (d->kind) {
    case NN_LINEAR:   /* y = x W^T + b */
        x = nn__oxw_rank(ox, x, rank, 2, C);
        nn__oxw_node(ox, "Gemm", L->bias ? 3 : 2, x, L->weight->name, L->bias ? L->bias->name : "");
        nn__oxw_int(ox, "transB", 1);
        nn__oxw_end(ox);
        nn__oxw_param(ox, L->weight);
        nn__oxw_param(ox, L->bias);
        break;
    case NN_CONV2D: {
        int64_t pads[4];
        x = nn__oxw_rank(ox, x, rank, 4, C);
        nn__oxw_node(ox, "Conv", L->bias ? 3 : 2, x, L->weight->name, L->bias ? L->bias->name : "");
        nn__oxw_ints(ox, "dilations", d->dilation_h, d->dilation_w);
        nn__oxw_int(ox, "group", d->groups);
        nn__oxw_ints(ox, "kernel_shape", d->kernel_h, d->kernel_w);
        pads[0] = pads[2] = d->pad_h;
        pads[1] = pads[3] = d->pad_w;
        nn__oxw_attr(ox, "pads", 7, 0.0f, 4, pads);
        nn__oxw_ints(ox, "strides", d->stride_h, d->stride_w);
        nn__oxw_end(ox);
        nn__oxw_param(ox, L->weight);
        nn__oxw_param(ox, L->bias);
        break;
    }
    case NN_MAXPOOL2D: case NN_AVGPOOL2D:
        nn__oxw_pool(ox, L, nn__oxw_rank(ox, x, rank, 4, C));
        break;
    case NN_GLOBAL_AVGPOOL:
        nn__oxw_unary(ox, "GlobalAveragePool", nn__oxw_rank(ox, x, rank, 4, C));
        break;
    case NN_BATCHNORM: {   /* on N x C (BatchNorm1d) or N x C x H x W */
        double m = d->momentum != 0.0f ? (double)d->momentum : NN__BN_MOMENTUM;
        int shape = C;
        if (L->weight) { nn__oxw_copy(a, L->weight->name); nn__oxw_copy(b, L->bias->name); }
        else {   /* no_affine: gamma 1, beta 0 */
            snprintf(a, sizeof a, "%s/ones", ox->prefix);
            snprintf(b, sizeof b, "%s/zeros", ox->prefix);
            nn__oxw_tensor(ox, a, 1, &shape, NULL, 1.0f, NULL);
            nn__oxw_tensor(ox, b, 1, &shape, NULL, 0.0f, NULL);
        }
        nn__oxw_node(ox, "BatchNormalization", 5, x, a, b, L->running_mean->name, L->running_var->name);
        nn__oxw_float(ox, "epsilon", d->eps != 0.0f ? d->eps : (float)NN__BN_EPS);
        nn__oxw_float(ox, "momentum", (float)(1.0 - m));   /* ONNX keeps this share of the old value */
        nn__oxw_end(ox);
        nn__oxw_param(ox, L->weight);
        nn__oxw_param(ox, L->bias);
        nn__oxw_param(ox, L->running_mean);
        nn__oxw_param(ox, L->running_var);
        break;
    }
    case NN_RELU: nn__oxw_unary(ox, "Relu", x); break;
    case NN_SIGMOID: nn__oxw_unary(ox, "Sigmoid", x); break;
    case NN_TANH: nn__oxw_unary(ox, "Tanh", x); break;
    case NN_LEAKY_RELU:
        nn__oxw_node(ox, "LeakyRelu", 1, x);
        nn__oxw_float(ox, "alpha", d->negative_slope);
        nn__oxw_end(ox);
        break;
    case NN_HARDTANH: {
        float lo, hi;
        nn__hardtanh_range(L, &lo, &hi);
        nn__oxw_scalar(ox, a, "min", lo);
        nn__oxw_scalar(ox, b, "max", hi);
        nn__oxw_node(ox, "Clip", 3, x, a, b);
        nn__oxw_end(ox);
        break;
    }
    case NN_GELU:   /* opset 13 has no Gelu: its formula, in the order of nn.h's float operations */
        if (d->approximate) {   /* x (1 + tanh(sqrt(2/pi) (x + ((0.044715 x) x) x))) / 2 */
            nn__oxw_with(ox, "Mul", x, "k", 0.044715f);
            nn__oxw_node(ox, "Mul", 2, ox->y, x);
            nn__oxw_end(ox);
            nn__oxw_node(ox, "Mul", 2, ox->y, x);
            nn__oxw_end(ox);
            nn__oxw_node(ox, "Add", 2, x, ox->y);
            nn__oxw_end(ox);
            nn__oxw_with(ox, "Mul", ox->y, "sqrt_2_pi", NN__SQRT_2_PI);
            nn__oxw_unary(ox, "Tanh", ox->y);
        } else {                /* x (1 + erf(x / sqrt 2)) / 2 */
            nn__oxw_with(ox, "Mul", x, "inv_sqrt2", NN__INV_SQRT_2);
            nn__oxw_unary(ox, "Erf", ox->y);
        }
        nn__oxw_with(ox, "Add", ox->y, "one", 1.0f);
        nn__oxw_node(ox, "Mul", 2, x, ox->y);
        nn__oxw_end(ox);
        nn__oxw_with(ox, "Mul", ox->y, "half", 0.5f);
        break;
    case NN_SOFTPLUS: {   /* z = beta x; y = z > threshold ? x : Softplus(z) / beta */
        char z[NN__OX_NAME];
        nn__oxw_copy(z, x);
        if (d->beta != 1.0f) {
            nn__oxw_scalar(ox, a, "beta", d->beta);
            nn__oxw_node(ox, "Mul", 2, x, a);
            nn__oxw_end(ox);
            nn__oxw_copy(z, ox->y);
        }
        nn__oxw_unary(ox, "Softplus", z);
        if (d->beta != 1.0f) {
            nn__oxw_node(ox, "Div", 2, ox->y, a);
            nn__oxw_end(ox);
        }
        nn__oxw_copy(c, ox->y);
        nn__oxw_scalar(ox, b, "threshold", d->threshold);
        nn__oxw_node(ox, "Greater", 2, z, b);
        nn__oxw_end(ox);
        nn__oxw_node(ox, "Where", 3, ox->y, x, c);
        nn__oxw_end(ox);
        break;
    }
    case NN_SCALE: nn__oxw_with(ox, "Mul", x, "factor", d->factor); break;
    case NN_FLATTEN:
        if (*rank == 2) { nn__oxw_copy(y, x); return; }
        nn__oxw_rank(ox, x, rank, 2, C);
        break;
    default:   /* Dropout (evaluation: the identity) and the block marks: no node */
        nn__oxw_copy(y, x);
        return;
    }
    nn__oxw_copy(y, ox->y);
}

/* Every layer's nodes; names[i + 1] and ranks[i + 1] are layer i's output, names[0] the
   input. A block's end adds the main path's output to the shortcut's (the block's input
   where it has none), both as rank 2 where they differ, then applies the ReLU. */
static void nn__oxw_graph(const nn_net *net, nn__oxw *ox, char (*names)[NN__OX_NAME], int *ranks)
{
    nn_shape out = nn_output_shape(net);
    int i, *r;
    ox->count = 0;
    nn__oxw_copy(names[0], "input");
    ranks[0] = net->input.h == 1 && net->input.w == 1 ? 2 : 4;
    for (i = 0; i < net->num_layers; i++) {
        const nn_layer *L = &net->layers[i];
        r = &ranks[i + 1];
        *r = ranks[i];
        nn__oxw_prefix(net, ox, i);
        ox->sub = 0;
        if (L->desc.kind == NN_SHORTCUT) {   /* the shortcut path starts at the block's input */
            int block = net->plan[i].block;
            nn__oxw_copy(names[i + 1], names[block + 1]);
            *r = ranks[block + 1];
        } else if (L->desc.kind == NN_BLOCK_END) {
            int block = net->plan[i].block, s = net->plan[block].shortcut;
            const char *main = names[s >= 0 ? s : i], *x = names[s >= 0 ? i : block + 1];
            int main_rank = ranks[s >= 0 ? s : i], x_rank = ranks[s >= 0 ? i : block + 1];
            char m[NN__OX_NAME];
            nn__oxw_copy(m, main);
            if (main_rank != x_rank) {
                if (main_rank == 4) nn__oxw_copy(m, nn__oxw_rank(ox, m, &main_rank, 2, L->in.c));
                else x = nn__oxw_rank(ox, x, &x_rank, 2, L->in.c);
            }
            *r = main_rank;
            nn__oxw_node(ox, "Add", 2, m, x);
            nn__oxw_end(ox);
            if (L->desc.relu) nn__oxw_unary(ox, "Relu", ox->y);
            nn__oxw_copy(names[i + 1], ox->y);
        } else {
            nn__oxw_layer(net, ox, i, names[i], r, names[i + 1]);
        }
    }
    /* the output: N x outputs, N x C x H x W for an image; "output" is the last node's */
    r = &ranks[net->num_layers];
    snprintf(ox->prefix, sizeof ox->prefix, "output");
    ox->sub = 0;
    if (*r == 4 && out.h == 1 && out.w == 1) nn__oxw_copy(names[net->num_layers], nn__oxw_rank(ox, names[net->num_layers], r, 2, out.c));
    if (ox->count == 0 || strcmp(names[net->num_layers], ox->y)) nn__oxw_unary(ox, "Identity", names[net->num_layers]);
}

/* ValueInfoProto (name 1, type 2) of a float tensor with a dynamic batch "N": TypeProto
   tensor_type 1 { elem_type 1, shape 2 { dim 1 { dim_value 1 | dim_param 2 } } }. */
static void nn__oxw_value_info(nn__buf *b, int field, const char *name, nn_shape s, int rank)
{
    size_t info = nn__pbw_open(b, field), type, tensor, shape, dim;
    int dims[3], i;
    dims[0] = s.c; dims[1] = s.h; dims[2] = s.w;
    nn__pbw_string(b, 1, name);
    type = nn__pbw_open(b, 2);
    tensor = nn__pbw_open(b, 1);
    nn__pbw_int(b, 1, 1);
    shape = nn__pbw_open(b, 2);
    dim = nn__pbw_open(b, 1);
    nn__pbw_string(b, 2, "N");
    nn__pbw_close(b, dim);
    for (i = 0; i < (rank == 2 ? 1 : 3); i++) {
        dim = nn__pbw_open(b, 1);
        nn__pbw_int(b, 1, rank == 2 ? (int64_t)nn_shape_size(s) : dims[i]);
        nn__pbw_close(b, dim);
    }
    nn__pbw_close(b, shape);
    nn__pbw_close(b, tensor);
    nn__pbw_close(b, type);
    nn__pbw_close(b, info);
}

NNDEF nn_status nn_save_onnx_memory(nn_net *net, unsigned char **data, size_t *size)
{
    nn__error_clear();
    nn__oxw ox;
    nn__buf m;
    char (*names)[NN__OX_NAME], version[32];
    int *ranks, pass, failed;
    size_t at;
    if (!net || !data || !size) return nn__fail(NN_ERR_ARG, "nn_save_onnx: net, data or size is NULL");
    if (!net->built) return nn__fail(NN_ERR_STATE, "nn_save_onnx: the net is not built");
    names = (char (*)[NN__OX_NAME])nn__alloc((size_t)(net->num_layers + 1) * sizeof *names);
    ranks = (int *)nn__alloc((size_t)(net->num_layers + 1) * sizeof *ranks);
    if (!names || !ranks) {
        nn__free(names);
        nn__free(ranks);
        return nn__fail(NN_ERR_NOMEM, "nn_save_onnx: out of memory");
    }
    memset(&ox, 0, sizeof ox);
    memset(&m, 0, sizeof m);
    for (pass = 0; pass < 2; pass++) {   /* count the nodes, then write them */
        ox.dry = pass == 0;
        ox.total = pass ? ox.count : 0;
        nn__oxw_graph(net, &ox, names, ranks);
    }
    /* ModelProto: ir_version 1, producer_name 2, producer_version 3, graph 7 (GraphProto:
       node 1, name 2, initializer 5, input 11, output 12), opset_import 8 (domain 1,
       version 2) */
    nn__pbw_int(&m, 1, NN__OX_IR_VERSION);
    nn__pbw_string(&m, 2, "nn.h");
    snprintf(version, sizeof version, "%d.%d.%d", NN_VERSION_MAJOR, NN_VERSION_MINOR, NN_VERSION_PATCH);
    nn__pbw_string(&m, 3, version);
    at = nn__pbw_open(&m, 7);
    if (ox.nodes.len) nn__buf_put(&m, ox.nodes.data, ox.nodes.len);
    nn__pbw_string(&m, 2, "nn.h");
    if (ox.inits.len) nn__buf_put(&m, ox.inits.data, ox.inits.len);
    nn__oxw_value_info(&m, 11, "input", net->input, ranks[0]);
    nn__oxw_value_info(&m, 12, "output", nn_output_shape(net), ranks[net->num_layers]);
    nn__pbw_close(&m, at);
    at = nn__pbw_open(&m, 8);
    nn__pbw_string(&m, 1, "");
    nn__pbw_int(&m, 2, NN__OX_OPSET);
    nn__pbw_close(&m, at);
    failed = ox.nodes.failed || ox.inits.failed || m.failed;
    nn__free(ox.nodes.data);
    nn__free(ox.inits.data);
    nn__free(names);
    nn__free(ranks);
    if (failed || m.len > INT32_MAX) {
        nn__free(m.data);
        if (failed) return nn__fail(NN_ERR_NOMEM, "nn_save_onnx: out of memory");
        return nn__fail(NN_ERR_ARG, "nn_save_onnx: the model takes %zu bytes, more than the 2 GiB "
                        "a protobuf message may hold", m.len);
    }
    *data = m.data;
    *size = m.len;
    return NN_OK;
}

#ifndef NN_NO_STDIO
NNDEF nn_status nn_save_onnx(nn_net *net, const char *path)
{
    nn__error_clear();
    unsigned char *data;
    size_t size;
    nn_status st;
    if (!path) return nn__fail(NN_ERR_ARG, "nn_save_onnx: path is NULL");
    if ((st = nn_save_onnx_memory(net, &data, &size)) != NN_OK) return st;
    st = nn__write_file(path, data, size);
    nn__free(data);
    return st;
}
#endif

#endif /* NN_NO_ONNX */

/* =================================================================================
   METRICS
   ================================================================================= */

NNDEF int nn_argmax(const float *v, int n)
{
    nn__error_clear();
    int i, best = 0;
    if (!v) { nn__fail(NN_ERR_ARG, "nn_argmax: v is NULL"); return 0; }
    for (i = 1; i < n && v[best] == v[best]; i++) if (v[i] > v[best] || v[i] != v[i]) best = i;
    return best;
}

/* ---- Test-time augmentation --------------------------------------------------------
   Views are made by the batcher's copy (nn__augment_copy) and the logits averaged in
   float in airbench94's order. buf holds 2 n images and 3 n outputs. */

/* dst = m(src) = 0.5 f(src) + 0.5 f(flip(src)); flipped is an n-image buffer. */
static int nn__tta_mirror(nn_net *net, const float *src, int n, float *flipped, float *dst)
{
    size_t sample = nn_shape_size(net->input), outs = (size_t)n * nn_shape_size(nn_output_shape(net)), j;
    const float *o = nn_forward(net, src, n);
    int i;
    if (!o) return 0;
    memcpy(dst, o, outs * sizeof(float));
    for (i = 0; i < n; i++)
        nn__augment_copy(flipped + sample * i, src + sample * i, net->input, 0, 0, 0, 1, 0);
    if (!(o = nn_forward(net, flipped, n))) return 0;
    for (j = 0; j < outs; j++) dst[j] = 0.5f * dst[j] + 0.5f * o[j];
    return 1;
}

static nn_status nn__tta_batch(nn_net *net, const float *x, int n, int level, float *buf, float *out)
{
    size_t sample = nn_shape_size(net->input), outs = (size_t)n * nn_shape_size(nn_output_shape(net)), j;
    float *moved = buf, *flipped = buf + sample * n, *ta = flipped + sample * n, *tb = ta + outs;
    int i, k;
    if (level == 0) {
        const float *o = nn_forward(net, x, n);
        if (!o) return NN_ERR_STATE;
        memcpy(out, o, outs * sizeof(float));
        return NN_OK;
    }
    if (!nn__tta_mirror(net, x, n, flipped, out)) return NN_ERR_STATE;
    if (level == 1) return NN_OK;
    for (k = 0; k < 2; k++) {   /* x moved down-right (offset 0 of the 1-padded image), up-left (2) */
        for (i = 0; i < n; i++)
            nn__augment_copy(moved + sample * i, x + sample * i, net->input, 1, 2 * k, 2 * k, 0, 1);
        if (!nn__tta_mirror(net, moved, n, flipped, k ? tb : ta)) return NN_ERR_STATE;
    }
    for (j = 0; j < outs; j++) out[j] = 0.5f * out[j] + 0.5f * ((ta[j] + tb[j]) / 2.0f);
    return NN_OK;
}

static nn_status nn__tta_check(const nn_net *net, int level, const char *fn)
{
    if (level < 0 || level > 2) return nn__fail(NN_ERR_ARG, "%s: TTA level %d, expected 0, 1 or 2", fn, level);
    if (level && (net->input.h < 2 || net->input.w < 2))
        return nn__fail(NN_ERR_ARG, "%s: the net's input (%d, %d, %d) is not an image", fn, net->input.c,
                        net->input.h, net->input.w);
    return NN_OK;
}

static float *nn__tta_buffer(const nn_net *net, int n)
{
    size_t sample = nn_shape_size(net->input), outs = nn_shape_size(nn_output_shape(net));
    return (float *)nn__alloc(((size_t)2 * sample + (size_t)3 * outs) * (size_t)n * sizeof(float));
}

NNDEF nn_status nn_forward_tta(nn_net *net, const float *x, int n, int level, float *out)
{
    nn__error_clear();
    nn_status st;
    float *buf;
    int was_training;
    if (!net || !x || !out)
        return nn__fail(NN_ERR_ARG, "nn_forward_tta: %s is NULL", !net ? "net" : !x ? "x" : "out");
    if (!net->built) return nn__fail(NN_ERR_STATE, "nn_forward_tta: the net is not built");
    if (n <= 0 || n > net->max_batch)
        return nn__fail(NN_ERR_ARG, "nn_forward_tta: %d samples, the net was built for 1 to %d", n, net->max_batch);
    if ((st = nn__tta_check(net, level, "nn_forward_tta")) != NN_OK) return st;
    if (!(buf = nn__tta_buffer(net, n))) return nn__fail(NN_ERR_NOMEM, "nn_forward_tta: out of memory");
    was_training = net->training;
    net->training = 0;
    st = nn__tta_batch(net, x, n, level, buf, out);
    net->training = was_training;
    nn__free(buf);
    return st;
}

static nn_status nn__evaluate(nn_net *net, const nn_dataset *d, int level, float *mean_loss,
                              float *accuracy, int *confusion, const char *fn);

NNDEF nn_status nn_evaluate(nn_net *net, const nn_dataset *d, float *mean_loss,
                            float *accuracy, int *confusion)
{
    nn__error_clear();
    return nn__evaluate(net, d, -1, mean_loss, accuracy, confusion, "nn_evaluate");
}

NNDEF nn_status nn_evaluate_tta(nn_net *net, const nn_dataset *d, int level, float *mean_loss,
                                float *accuracy, int *confusion)
{
    nn__error_clear();
    nn_status st;
    if (net && d && (st = nn__tta_check(net, level, "nn_evaluate_tta")) != NN_OK) return st;
    return nn__evaluate(net, d, level, mean_loss, accuracy, confusion, "nn_evaluate_tta");
}

/* level -1: the plain forward (nn_evaluate), else nn_forward_tta's logits. */
static nn_status nn__evaluate(nn_net *net, const nn_dataset *d, int level, float *mean_loss,
                              float *accuracy, int *confusion, const char *fn)
{
    size_t sample;
    int outputs, classes, was_training, start, correct = 0, i;
    long bad_sample = -1;
    double loss_sum = 0.0;
    float *buf = NULL, *logits = NULL;
    if (!net || !d) return nn__fail(NN_ERR_ARG, "%s: %s is NULL", fn, !net ? "net" : "the data set");
    if (!net->built) return nn__fail(NN_ERR_STATE, "%s: the net is not built", fn);
    sample = nn_shape_size(d->shape);
    outputs = (int)nn_shape_size(nn_output_shape(net));
    if (sample != nn_shape_size(net->input) || d->n <= 0)
        return nn__fail(NN_ERR_ARG, "%s: %d samples of %dx%dx%d for a net that takes %dx%dx%d",
                        fn, d->n, d->shape.c, d->shape.h, d->shape.w, net->input.c, net->input.h, net->input.w);
    if (!d->x || !d->y) return nn__fail(NN_ERR_ARG, "%s: the data set has no %s", fn, !d->x ? "x" : "y");
    if (d->num_classes < 0 || d->num_classes > outputs)
        return nn__fail(NN_ERR_ARG, "%s: the data has %d classes, the net outputs %d",
                        fn, d->num_classes, outputs);
    classes = d->num_classes ? d->num_classes : outputs;
    for (i = 0; i < d->n; i++)
        if (d->y[i] < 0 || d->y[i] >= classes)
            return nn__fail(NN_ERR_ARG, "%s: label %d of sample %d is outside [0, %d)", fn, d->y[i], i, classes);
    if (net->check_input && nn__check_batch(net, d->x, d->n, fn) != NN_OK) return NN_ERR_NUMERIC;
    if (level >= 0) {
        int most = d->n < net->max_batch ? d->n : net->max_batch;
        buf = nn__tta_buffer(net, most);
        logits = (float *)nn__alloc((size_t)most * outputs * sizeof(float));
        if (!buf || !logits) {
            nn__free(buf);
            nn__free(logits);
            return nn__fail(NN_ERR_NOMEM, "%s: out of memory", fn);
        }
    }
    if (confusion) memset(confusion, 0, (size_t)classes * classes * sizeof(int));
    was_training = net->training;
    net->training = 0;
    for (start = 0; start < d->n; start += net->max_batch) {
        int n = d->n - start < net->max_batch ? d->n - start : net->max_batch;
        const float *out = level < 0 ? nn_forward(net, d->x + (size_t)start * sample, n) : logits;
        ptrdiff_t at;
        if (level >= 0 && nn__tta_batch(net, d->x + (size_t)start * sample, n, level, buf, logits) != NN_OK)
            out = NULL;
        if (!out) {
            net->training = was_training;
            nn__free(buf);
            nn__free(logits);
            return NN_ERR_STATE;
        }
        if (bad_sample < 0 && (at = nn__first_nonfinite(out, (size_t)n * outputs)) >= 0)
            bad_sample = start + at / outputs;
        loss_sum += (double)nn_softmax_cross_entropy(out, d->y + start, n, outputs, NULL) * n;
        for (i = 0; i < n; i++) {
            int predicted = nn_argmax(out + (size_t)i * outputs, outputs), truth = d->y[start + i];
            correct += predicted == truth;
            if (confusion && predicted < classes) confusion[truth * classes + predicted]++;
        }
    }
    net->training = was_training;
    nn__free(buf);
    nn__free(logits);
    if (mean_loss) *mean_loss = (float)(loss_sum / d->n);
    if (accuracy) *accuracy = (float)correct / (float)d->n;
    if (bad_sample >= 0)
        return nn__fail(NN_ERR_NUMERIC, "%s: the logits of sample %ld are not all finite", fn, bad_sample);
    return NN_OK;
}

#ifndef NN_NO_STDIO
NNDEF nn_status nn_print_confusion(FILE *out, const int *confusion, int classes,
                                   const char *const *names)
{
    nn__error_clear();
    int i, j;
    if (!out || !confusion)
        return nn__fail(NN_ERR_ARG, "nn_print_confusion: %s is NULL", out ? "confusion" : "out");
    if (classes < 1) return nn__fail(NN_ERR_ARG, "nn_print_confusion: %d classes, expected >= 1", classes);
    fprintf(out, "%-12s", "true\\pred");
    for (j = 0; j < classes; j++) {
        if (names && names[j]) fprintf(out, " %6.6s", names[j]);
        else fprintf(out, " %6d", j);
    }
    fprintf(out, "  accuracy\n");
    for (i = 0; i < classes; i++) {
        const int *counts = confusion + (size_t)i * classes;
        long long row = 0;
        if (names && names[i]) fprintf(out, "%-12.12s", names[i]);
        else fprintf(out, "%-12d", i);
        for (j = 0; j < classes; j++) {
            fprintf(out, " %6d", counts[j]);
            row += counts[j];
        }
        fprintf(out, "  %7.4f\n", row ? (double)counts[i] / (double)row : 0.0);
    }
    if (ferror(out)) return nn__fail(NN_ERR_IO, "nn_print_confusion: write error");
    return NN_OK;
}
#endif

#endif /* NN_IMPLEMENTATION_DONE */
#endif /* NN_IMPLEMENTATION */

/*
------------------------------------------------------------------------------------
This software is available under 2 licenses -- choose whichever you prefer.
------------------------------------------------------------------------------------
ALTERNATIVE A - MIT License
Copyright (c) 2026 the nn.h authors
Permission is hereby granted, free of charge, to any person obtaining a copy of this
software and associated documentation files (the "Software"), to deal in the Software
without restriction, including without limitation the rights to use, copy, modify,
merge, publish, distribute, sublicense, and/or sell copies of the Software, and to
permit persons to whom the Software is furnished to do so, subject to the following
conditions:
The above copyright notice and this permission notice shall be included in all copies
or substantial portions of the Software.
THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED,
INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A
PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT
HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF
CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE
OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.
------------------------------------------------------------------------------------
ALTERNATIVE B - Public Domain (www.unlicense.org)
This is free and unencumbered software released into the public domain.
Anyone is free to copy, modify, publish, use, compile, sell, or distribute this
software, either in source code form or as a compiled binary, for any purpose,
commercial or non-commercial, and by any means.
In jurisdictions that recognize copyright laws, the author or authors of this
software dedicate any and all copyright interest in the software to the public
domain. We dedicate this software to the public domain to the benefit of the public
at large and to the detriment of our heirs and successors in perpetuity.
------------------------------------------------------------------------------------
*/
