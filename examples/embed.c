/* embed.c - an app that carries its trained model inside its own binary.

   Build:  make build/embed MODEL=results/mlp.safetensors      (or by hand:)
           build/embed_model --name nn_model results/mlp.safetensors build/model_data.c
           cc -O2 -I. -I/usr/include/stb -Ibuild examples/embed.c -o embed -lm -lpthread
   Run:    ./embed cat.jpg truck.png

   tools/embed_model turns the .safetensors file into a C array (model_data.c defines
   nn_model[] and nn_model_size), which is compiled in here; nn_load_memory rebuilds
   the net from it, so the program reads no model file. The output is classify's:
   one line per image with the top 3 classes. Exit status: 0 all classified, 1 an
   image could not be read (the others are still classified), 2 no image given. */
#define _POSIX_C_SOURCE 200809L
#define NN_IMPLEMENTATION
#include "nn.h"
#include "image.h"
#include "model_data.c"

int main(int argc, char **argv)
{
    nn_net *net = nn_load_memory(nn_model, nn_model_size, 1);
    int i, status = 0;
    if (argc < 2) { fprintf(stderr, "usage: embed IMAGE...\n"); return 2; }
    if (net && nn_inference_only(net) != NN_OK) {   /* it only predicts: no training buffers */
        nn_net_free(net);
        net = NULL;
    }
    if (!net || image_check_net(net)) {
        fprintf(stderr, "embed: %s\n", net ? image_check_net(net) : nn_error());
        return 1;
    }
    for (i = 1; i < argc; i++) status |= image_classify(net, "embed", argv[i], 3);
    nn_net_free(net);
    return status;
}
