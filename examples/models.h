/* The networks of the experiments, shared by the examples and the benchmarks.
   Include after nn.h. */
#ifndef NN_EXAMPLES_MODELS_H
#define NN_EXAMPLES_MODELS_H

/* E3: the VGG-style ConvNet of the assignment. Each conv block is Conv2d 3x3 / stride 1 /
   pad 1 -> BatchNorm2d -> ReLU; conv1 64, maxpool, conv2 128, maxpool, conv3 256 x2, maxpool,
   conv4 512 x2, maxpool, conv5 512 x2, maxpool (3x3, stride 2, pad 1 each: 32 -> 16 -> 8 -> 4
   -> 2 -> 1), avgpool 1x1 (an identity at 1x1, kept so the layer indices and the state_dict
   keys match the source's nn.Sequential), Linear(512 -> 10). */
static inline nn_net *vgg_convnet(nn_shape input)
{
    static const int widths[5][2] = {{64, 0}, {128, 0}, {256, 256}, {512, 512}, {512, 512}};
    nn_net *net = nn_net_new(input);
    int stage, j;
    for (stage = 0; stage < 5; stage++) {
        for (j = 0; j < 2 && widths[stage][j]; j++) {
            nn_add(net, nn_conv2d(widths[stage][j], 3, 1, 1));
            nn_add(net, nn_batchnorm());
            nn_add(net, nn_relu());
        }
        nn_add(net, nn_maxpool2d(3, 2, 1));
    }
    nn_add(net, nn_avgpool2d(1, 1, 0));
    nn_add(net, nn_flatten());
    nn_add(net, nn_linear(10));
    return net;
}

/* E1: the assignment's MLP, 3072 -> Linear(hidden) -> LeakyReLU(slope) -> ... -> Linear(10). */
static inline nn_net *mlp_net(nn_shape input, const int *hidden, int num_hidden, float neg_slope)
{
    nn_net *net = nn_net_new(input);
    int i;
    nn_add(net, nn_flatten());
    for (i = 0; i < num_hidden; i++) {
        nn_add(net, nn_linear(hidden[i]));
        nn_add(net, nn_leaky_relu(neg_slope));
    }
    nn_add(net, nn_linear(10));
    return net;
}

#endif
