/* stb_impl.h - compiles stb_image (with its user-readable failure messages) and
   stb_image_resize into the one .c file that includes it: examples/image.h (classify,
   embed) and tools/pack_images.c. */
#ifndef NN_EXAMPLES_STB_IMPL_H
#define NN_EXAMPLES_STB_IMPL_H
/* stb_image 2.27 sets a variable it never reads; silence that for the stb code only. */
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#endif
#define STB_IMAGE_IMPLEMENTATION
#define STBI_FAILURE_USERMSG
#include <stb_image.h>
#define STB_IMAGE_RESIZE_IMPLEMENTATION
#include <stb_image_resize.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
#endif
