/* The networks of the experiments, shared by the examples and the benchmarks.
   Include after nn.h. */
#ifndef NN_EXAMPLES_MODELS_H
#define NN_EXAMPLES_MODELS_H
#include <stdio.h>
#include <string.h>

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

/* ---- torchvision's ResNet-18 and MobileNetV2 -------------------------------------
   Each adds the layers of the torchvision model with its state_dict names (nn_named),
   so that a state_dict PyTorch saved loads with nn_load_weights and nn.h's files load
   into torchvision's model with load_state_dict(strict=True). They return NULL (with
   nn_error() set) if a layer is refused. */

/* nn_add of a named layer (name NULL: the index); *ok becomes 0 if it is refused. */
static inline void models_add(nn_net *net, nn_layer_desc d, const char *name, int *ok)
{
    if (*ok && nn_add(net, name ? nn_named(d, name) : d) != NN_OK) *ok = 0;
}

/* A convolution without bias, as torchvision's ResNets and MobileNets have them. */
static inline nn_layer_desc models_conv(int out, int kernel, int stride, int pad, int groups)
{
    nn_layer_desc d = nn_conv2d(out, kernel, stride, pad);
    d.no_bias = 1;
    d.groups = groups > 1 ? groups : 0;
    return d;
}

/* The net, or NULL after freeing it when a layer was refused. */
static inline nn_net *models_done(nn_net *net, int ok)
{
    if (ok) return net;
    nn_net_free(net);
    return NULL;
}

/* ResNet-18 after the stem: four stages of two BasicBlocks (64, 128, 256, 512
   channels), y = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)), the first block
   of stages 2-4 with stride 2 and a 1x1 conv + BatchNorm as its shortcut
   ("layerS.0.downsample.0/1"); then global average pooling, flatten and "fc". */
static inline nn_net *models_resnet18_body(nn_net *net, int classes, int ok)
{
    char name[NN_MAX_NAME];
    int stage, b, in = 64;
    for (stage = 1; stage <= 4; stage++) {
        int planes = 64 << (stage - 1);
        for (b = 0; b < 2; b++) {
            int stride = stage > 1 && b == 0 ? 2 : 1;
            models_add(net, nn_block(), NULL, &ok);
            snprintf(name, sizeof name, "layer%d.%d.conv1", stage, b);
            models_add(net, models_conv(planes, 3, stride, 1, 1), name, &ok);
            snprintf(name, sizeof name, "layer%d.%d.bn1", stage, b);
            models_add(net, nn_batchnorm(), name, &ok);
            models_add(net, nn_relu(), NULL, &ok);
            snprintf(name, sizeof name, "layer%d.%d.conv2", stage, b);
            models_add(net, models_conv(planes, 3, 1, 1, 1), name, &ok);
            snprintf(name, sizeof name, "layer%d.%d.bn2", stage, b);
            models_add(net, nn_batchnorm(), name, &ok);
            if (stride != 1 || in != planes) {
                models_add(net, nn_shortcut(), NULL, &ok);
                snprintf(name, sizeof name, "layer%d.%d.downsample.0", stage, b);
                models_add(net, models_conv(planes, 1, stride, 0, 1), name, &ok);
                snprintf(name, sizeof name, "layer%d.%d.downsample.1", stage, b);
                models_add(net, nn_batchnorm(), name, &ok);
            }
            models_add(net, nn_block_end(1), NULL, &ok);
            in = planes;
        }
    }
    models_add(net, nn_global_avgpool(), NULL, &ok);
    models_add(net, nn_flatten(), NULL, &ok);
    models_add(net, nn_linear(classes), "fc", &ok);
    return models_done(net, ok);
}

/* torchvision's resnet18(num_classes=classes): stem "conv1" 7x7 / stride 2 / pad 3
   without bias, "bn1", ReLU, MaxPool2d(3, 2, 1); 224 x 224 inputs become 7 x 7 x 512. */
static inline nn_net *resnet18(nn_shape input, int classes)
{
    nn_net *net = nn_net_new(input);
    int ok = net != NULL;
    if (!ok) return NULL;
    models_add(net, models_conv(64, 7, 2, 3, 1), "conv1", &ok);
    models_add(net, nn_batchnorm(), "bn1", &ok);
    models_add(net, nn_relu(), NULL, &ok);
    models_add(net, nn_maxpool2d(3, 2, 1), NULL, &ok);
    return models_resnet18_body(net, classes, ok);
}

/* The CIFAR variant of most CIFAR-10 ResNet code: the stem is a 3x3 / stride 1 / pad 1
   "conv1" (no bias) + "bn1" + ReLU and there is no max-pool (32 x 32 inputs end at
   4 x 4 x 512). In torchvision: resnet18(num_classes=10) with conv1 replaced by
   Conv2d(3, 64, 3, 1, 1, bias=False) and maxpool by Identity. */
static inline nn_net *resnet18_cifar(nn_shape input, int classes)
{
    nn_net *net = nn_net_new(input);
    int ok = net != NULL;
    if (!ok) return NULL;
    models_add(net, models_conv(64, 3, 1, 1, 1), "conv1", &ok);
    models_add(net, nn_batchnorm(), "bn1", &ok);
    models_add(net, nn_relu(), NULL, &ok);
    return models_resnet18_body(net, classes, ok);
}

/* Conv (no bias) + BatchNorm + ReLU6 named prefix.0, prefix.1 (torchvision's
   Conv2dNormActivation). */
static inline void models_conv_bn_relu6(nn_net *net, nn_layer_desc conv, const char *prefix, int *ok)
{
    char name[NN_MAX_NAME];
    snprintf(name, sizeof name, "%.60s.0", prefix);
    models_add(net, conv, name, ok);
    snprintf(name, sizeof name, "%.60s.1", prefix);
    models_add(net, nn_batchnorm(), name, ok);
    models_add(net, nn_relu6(), NULL, ok);
}

/* torchvision's mobilenet_v2(num_classes=classes), width 1.0: "features.0" a 3x3 /
   stride 2 conv to 32 channels + BatchNorm + ReLU6; features.1-17 the InvertedResidual
   blocks of the table (t expansion, c channels, n repeats, s stride of the first):
   "features.N.conv.0" the 1x1 expansion to in*t channels + BN + ReLU6 (absent for
   t = 1), then the depthwise 3x3 (groups = channels) + BN + ReLU6, then the 1x1
   projection "conv.K" and its BatchNorm "conv.K+1", with the input added when the
   stride is 1 and the channels stay; "features.18" a 1x1 conv to 1280 + BN + ReLU6;
   then global average pooling, Dropout(0.2) "classifier.0" and "classifier.1". */
static inline nn_net *mobilenet_v2(nn_shape input, int classes)
{
    static const int table[7][4] = {{1, 16, 1, 1}, {6, 24, 2, 2}, {6, 32, 3, 2}, {6, 64, 4, 2},
                                    {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};
    char prefix[NN_MAX_NAME], name[NN_MAX_NAME];
    nn_net *net = nn_net_new(input);
    int ok = net != NULL, row, i, in = 32, index = 1;
    if (!ok) return NULL;
    models_conv_bn_relu6(net, models_conv(32, 3, 2, 1, 1), "features.0", &ok);
    for (row = 0; row < 7; row++) {
        for (i = 0; i < table[row][2]; i++, index++) {
            int t = table[row][0], out = table[row][1], stride = i == 0 ? table[row][3] : 1;
            int hidden = in * t, k = 0, residual = stride == 1 && in == out;
            if (residual) models_add(net, nn_block(), NULL, &ok);
            if (t != 1) {
                snprintf(prefix, sizeof prefix, "features.%d.conv.%d", index, k++);
                models_conv_bn_relu6(net, models_conv(hidden, 1, 1, 0, 1), prefix, &ok);
            }
            snprintf(prefix, sizeof prefix, "features.%d.conv.%d", index, k++);
            models_conv_bn_relu6(net, models_conv(hidden, 3, stride, 1, hidden), prefix, &ok);
            snprintf(name, sizeof name, "features.%d.conv.%d", index, k++);
            models_add(net, models_conv(out, 1, 1, 0, 1), name, &ok);
            snprintf(name, sizeof name, "features.%d.conv.%d", index, k);
            models_add(net, nn_batchnorm(), name, &ok);
            if (residual) models_add(net, nn_block_end(0), NULL, &ok);
            in = out;
        }
    }
    models_conv_bn_relu6(net, models_conv(1280, 1, 1, 0, 1), "features.18", &ok);
    models_add(net, nn_global_avgpool(), NULL, &ok);
    models_add(net, nn_flatten(), NULL, &ok);
    models_add(net, nn_dropout(0.2f), "classifier.0", &ok);
    models_add(net, nn_linear(classes), "classifier.1", &ok);
    return models_done(net, ok);
}

/* ---- Lookup by name, for tools/nn.c ---------------------------------------------- */

static inline nn_net *models_vgg(nn_shape input, int classes)
{
    (void)classes;
    return vgg_convnet(input);
}

static inline nn_net *models_mlp(nn_shape input, int classes)
{
    static const int hidden = 100;
    (void)classes;
    return mlp_net(input, &hidden, 1, 0.02f);
}

typedef struct model_arch {
    const char *name;
    nn_shape input;         /* the input it is made for (CHW) */
    int classes;            /* the only class count it has; 0: any (default 10) */
    nn_net *(*make)(nn_shape input, int classes);
    const char *about;
} model_arch;

static const model_arch model_archs[] = {
    {"resnet18", {3, 224, 224}, 0, resnet18, "torchvision's resnet18"},
    {"resnet18_cifar", {3, 32, 32}, 0, resnet18_cifar, "resnet18 with a 3x3 stride-1 stem, no max-pool"},
    {"mobilenet_v2", {3, 224, 224}, 0, mobilenet_v2, "torchvision's mobilenet_v2, width 1.0"},
    {"vgg_convnet", {3, 32, 32}, 10, models_vgg, "E3's VGG-style ConvNet (nn.Sequential names)"},
    {"mlp", {3, 32, 32}, 10, models_mlp, "E1's MLP: Linear(100), LeakyReLU(0.02), Linear(10)"},
};

/* The architecture called name, or NULL. */
static inline const model_arch *model_find(const char *name)
{
    size_t i;
    for (i = 0; name && i < sizeof model_archs / sizeof model_archs[0]; i++)
        if (!strcmp(model_archs[i].name, name)) return &model_archs[i];
    return NULL;
}

#endif
