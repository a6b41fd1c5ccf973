"""TensorFlow workloads: keras.applications models, the study's small models, and `calibrate`.

Names match the PyTorch twins (resnet50, inception_v3, efficientnet_b0, ...) so that
`--framework all` compares one architecture across frameworks. A model ends as its recipe's
`output` says: logits, or the study's softmax / sigmoid layer (keras.applications' own
`classifier_activation`), and the loss takes what it emits. The study's models (smallcnn,
mediumcnn, resnet18_cifar, resnet18_celeba) are its Keras layers with Keras's defaults.
Builders import keras lazily so that registering them costs nothing.
"""

from __future__ import annotations

from typing import Any

from nnr_profile.workloads.checks import (
    CALIBRATE_ARGS,
    CELEBA_SIDE,
    EMBEDDING_LM_ARGS,
    LENET_ARGS,
    MEDIUMCNN_ARGS,
    MEDIUMCNN_KERNELS,
    MLP_ARGS,
    RESNET18_CIFAR_ARGS,
    SMALLCNN_ARGS,
    check_embedding_lm,
    mediumcnn_name,
)
from nnr_profile.workloads.recipes import (
    OVERHEAD,
    SEED_KERAS_MNIST,
    SEED_LENET,
    SEED_MLP,
    STUDY_CELEBA,
    STUDY_RESNET18,
    STUDY_SMALLCNN,
    Recipe,
)
from nnr_profile.workloads.registry import BuildContext, register_workload

IMAGENET = {"input_shape": (224, 224, 3), "num_classes": 1000, "input_kind": "image"}
BN = {"momentum": 0.9, "epsilon": 1e-5}
"""BatchNormalization settings equal to PyTorch's defaults (momentum 0.1 there), for the models
that follow a PyTorch model (resnet18_imagenet, mlp); the study's models keep Keras's defaults."""

KERAS_APPLICATIONS: dict[str, tuple[str, int, int]] = {
    "resnet50": ("ResNet50", 224, 32),
    "resnet101": ("ResNet101", 224, 32),
    "resnet152": ("ResNet152", 224, 32),
    "inception_v3": ("InceptionV3", 299, 75),
    "xception": ("Xception", 299, 71),
    "densenet121": ("DenseNet121", 224, 32),
    "densenet169": ("DenseNet169", 224, 32),
    "densenet201": ("DenseNet201", 224, 32),
    "mobilenet": ("MobileNet", 224, 32),
    "mobilenet_v2": ("MobileNetV2", 224, 32),
    "mobilenet_v3_large": ("MobileNetV3Large", 224, 32),
    "vgg16": ("VGG16", 224, 32),
    "vgg19": ("VGG19", 224, 32),
    "efficientnet_b0": ("EfficientNetB0", 224, 32),
    "efficientnet_b1": ("EfficientNetB1", 224, 32),
    "efficientnet_b2": ("EfficientNetB2", 224, 32),
    "efficientnet_b3": ("EfficientNetB3", 224, 32),
    "efficientnet_b4": ("EfficientNetB4", 224, 32),
    "efficientnet_b5": ("EfficientNetB5", 224, 32),
    "efficientnet_b6": ("EfficientNetB6", 224, 32),
    "efficientnet_b7": ("EfficientNetB7", 224, 32),
}
"""workload name -> (keras.applications class, default image side, smallest side it accepts)."""


def _application_builder(class_name: str, recipe: Recipe):
    def build(ctx: BuildContext) -> Any:
        import keras

        return getattr(keras.applications, class_name)(
            weights=None,
            input_shape=ctx.input_shape,
            classes=ctx.num_classes,
            classifier_activation=None if recipe.from_logits else recipe.output,
        )

    build.__doc__ = f"keras.applications.{class_name}, random init, synthetic ImageNet batches."
    return build


for _name, (_class, _side, _min_side) in KERAS_APPLICATIONS.items():
    register_workload(
        "tf",
        _name,
        input_shape=(_side, _side, 3),
        num_classes=1000,
        min_image_size=_min_side,
        recipe=OVERHEAD,
        layout="keras.applications",
    )(_application_builder(_class, OVERHEAD))


def _output(recipe: Recipe) -> list[Any]:
    """The recipe's output activation as a last layer ([] for logits)."""
    from keras import layers

    return [] if recipe.from_logits else [layers.Activation(recipe.output, dtype="float32")]


def _sequential(ctx: BuildContext, *layers: Any) -> Any:
    import keras

    return keras.Sequential([keras.Input(shape=ctx.input_shape), *layers])


@register_workload(
    "tf",
    "smallcnn",
    input_shape=(32, 32, 3),
    num_classes=10,
    min_image_size=8,
    arguments=SMALLCNN_ARGS,
    layout="study",
    recipe=STUDY_SMALLCNN,
)
def build_smallcnn(ctx: BuildContext) -> Any:
    """The study's small CNN: 3 x (conv3x3 16/32/32, BatchNorm if bn, ReLU, maxpool 2), GAP,
    dense 32, dense 10, softmax (smallcnn.py's layers)."""
    from keras import layers

    blocks: list[Any] = []
    for width in (16, 32, 32):
        blocks.append(layers.Conv2D(width, 3, padding="same"))
        if ctx.args["bn"]:
            blocks.append(layers.BatchNormalization())
        blocks += [layers.ReLU(), layers.MaxPooling2D(2, strides=2)]
    return _sequential(
        ctx,
        *blocks,
        layers.GlobalAveragePooling2D(),
        layers.Dense(32, activation="relu"),
        layers.Dense(ctx.num_classes),
        *_output(STUDY_SMALLCNN),
    )


def _mediumcnn(ctx: BuildContext, kernel: int) -> Any:
    from keras import layers

    blocks: list[Any] = []
    for width in (16, 32, 64, 128, 256, 512):
        blocks += [
            layers.Conv2D(width, kernel, padding="same"),
            layers.BatchNormalization(),
            layers.ReLU(),
            layers.MaxPooling2D(2, strides=2),
        ]
    return _sequential(
        ctx,
        *blocks,
        layers.GlobalAveragePooling2D(),
        layers.Dense(ctx.num_classes),
        *_output(OVERHEAD),
    )


@register_workload(
    "tf",
    "mediumcnn",
    min_image_size=64,
    arguments=MEDIUMCNN_ARGS,
    recipe=OVERHEAD,
    layout="study",
    **IMAGENET,
)
def build_mediumcnn(ctx: BuildContext) -> Any:
    """The study's MediumCNN: 6 x (conv kxk, BatchNorm (Keras defaults), ReLU, maxpool 2),
    16->512 ch, GAP, dense 1000, softmax (src/common/cnns.py)."""
    return _mediumcnn(ctx, int(ctx.args["kernel"]))


def _fixed_kernel_mediumcnn(kernel: int):
    def build(ctx: BuildContext) -> Any:
        return _mediumcnn(ctx, kernel)

    build.__doc__ = f"The study's 'MediumCNN {kernel}*{kernel}': mediumcnn with kernel={kernel}."
    return build


for _kernel in MEDIUMCNN_KERNELS:
    register_workload(
        "tf",
        mediumcnn_name(_kernel),
        min_image_size=64,
        recipe=OVERHEAD,
        layout="study",
        **IMAGENET,
    )(_fixed_kernel_mediumcnn(_kernel))


def _study_resnet18(ctx: BuildContext, recipe: Recipe, name: str) -> Any:
    """The study's ResNet-18 (src/common/resnet.py): its layers, Keras's defaults."""
    import keras
    from keras import layers

    def conv_bn(x: Any, width: int, kernel: int, stride: int) -> Any:
        y = layers.Conv2D(width, kernel, strides=stride, padding="same", use_bias=False)(x)
        return layers.BatchNormalization()(y)

    def block(x: Any, width: int, downsample: bool) -> Any:
        stride = 2 if downsample else 1
        shortcut = conv_bn(x, width, 1, 2) if downsample else x
        y = layers.Activation("relu")(conv_bn(x, width, 3, stride))
        y = conv_bn(y, width, 3, 1)
        return layers.Activation("relu")(layers.Add()([shortcut, y]))

    inputs = keras.Input(shape=ctx.input_shape)
    x = layers.Activation("relu")(conv_bn(inputs, 64, 3, 1))
    for stage, width in enumerate((64, 128, 256, 512)):
        x = block(x, width, stage > 0)
        x = block(x, width, False)
    x = layers.Flatten()(layers.AveragePooling2D(4)(x))
    x = layers.Dense(ctx.num_classes)(x)
    for layer in _output(recipe):
        x = layer(x)
    return keras.Model(inputs, x, name=name)


@register_workload(
    "tf",
    "resnet18_cifar",
    input_shape=(32, 32, 3),
    num_classes=10,
    min_image_size=32,
    arguments=RESNET18_CIFAR_ARGS,
    layout="study",
    recipe=STUDY_RESNET18,
)
def build_resnet18_cifar(ctx: BuildContext) -> Any:
    """The study's CIFAR ResNet-18: 3x3 stem, no max-pool, 2-2-2-2 blocks, AvgPool(4), dense."""
    return _study_resnet18(ctx, STUDY_RESNET18, "resnet18_cifar")


@register_workload(
    "tf",
    "resnet18_celeba",
    input_shape=(CELEBA_SIDE, CELEBA_SIDE, 3),
    num_classes=40,
    min_image_size=32,
    layout="study",
    recipe=STUDY_CELEBA,
)
def build_resnet18_celeba(ctx: BuildContext) -> Any:
    """The study's CelebA model: its CIFAR ResNet-18 at 128x128, 40 attributes (sigmoid)."""
    return _study_resnet18(ctx, STUDY_CELEBA, "resnet18_celeba")


@register_workload("tf", "resnet18_imagenet", min_image_size=32, layout="torchvision", **IMAGENET)
def build_resnet18_imagenet(ctx: BuildContext) -> Any:
    """ResNet-18 (basic blocks 2-2-2-2, 64->512 ch) in Keras, as torchvision's resnet18."""
    import keras
    from keras import layers

    def block(x: Any, width: int, stride: int) -> Any:
        shortcut = x
        y = layers.Conv2D(width, 3, strides=stride, padding="same", use_bias=False)(x)
        y = layers.ReLU()(layers.BatchNormalization(**BN)(y))
        y = layers.Conv2D(width, 3, padding="same", use_bias=False)(y)
        y = layers.BatchNormalization(**BN)(y)
        if stride != 1 or x.shape[-1] != width:
            shortcut = layers.Conv2D(width, 1, strides=stride, use_bias=False)(x)
            shortcut = layers.BatchNormalization(**BN)(shortcut)
        return layers.ReLU()(layers.Add()([y, shortcut]))

    inputs = keras.Input(shape=ctx.input_shape)
    x = layers.Conv2D(64, 7, strides=2, padding="same", use_bias=False)(inputs)
    x = layers.ReLU()(layers.BatchNormalization(**BN)(x))
    x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
    for stage, width in enumerate((64, 128, 256, 512)):
        x = block(x, width, 1 if stage == 0 else 2)
        x = block(x, width, 1)
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, layers.Dense(ctx.num_classes)(x), name="resnet18_imagenet")


@register_workload(
    "tf",
    "lenet",
    input_shape=(28, 28, 1),
    num_classes=10,
    min_image_size=28,
    arguments=LENET_ARGS,
    recipe=SEED_LENET,
)
def build_lenet(ctx: BuildContext) -> Any:
    """LeNet: conv 20 5x5, maxpool, conv 50 5x5, maxpool, fc 500, fc 10 (dropout options)."""
    from keras import layers

    return _sequential(
        ctx,
        layers.Conv2D(20, 5),
        layers.MaxPooling2D(2),
        layers.Conv2D(50, 5),
        layers.MaxPooling2D(2),
        layers.Dropout(float(ctx.args["conv_dropout"])),
        layers.Flatten(),
        layers.Dense(500, activation="relu"),
        layers.Dropout(float(ctx.args["dropout"])),
        layers.Dense(ctx.num_classes),
    )


@register_workload(
    "tf",
    "mlp",
    input_shape=(784,),
    num_classes=10,
    input_kind="features",
    arguments=MLP_ARGS,
    recipe=SEED_MLP,
)
def build_mlp(ctx: BuildContext) -> Any:
    """MLP 784 -> 392 -> 196 -> 10 with norm=none|batch|layer and dropout."""
    from keras import layers

    norms = {
        "none": lambda: layers.Identity(),
        "batch": lambda: layers.BatchNormalization(**BN),
        "layer": lambda: layers.LayerNormalization(epsilon=1e-5),
    }
    blocks: list[Any] = []
    for width in (392, 196):
        blocks += [
            layers.Dense(width),
            norms[ctx.args["norm"]](),
            layers.ReLU(),
            layers.Dropout(float(ctx.args["dropout"])),
        ]
    return _sequential(ctx, *blocks, layers.Dense(ctx.num_classes))


@register_workload(
    "tf",
    "embedding_lm",
    input_shape=(64,),
    num_classes=1000,
    input_kind="tokens",
    default_batch_size=128,
    optimizer="adam",
    learning_rate=1e-3,
    arguments=EMBEDDING_LM_ARGS,
    check_args=check_embedding_lm,
)
def build_embedding_lm(ctx: BuildContext) -> Any:
    """Small LM: embedding + post-norm Transformer encoder layers + dense head (as PyTorch's)."""
    import keras
    from keras import layers

    d_model, heads = int(ctx.args["d_model"]), int(ctx.args["heads"])
    tokens = keras.Input(shape=ctx.input_shape, dtype="int32")
    x = layers.Embedding(ctx.num_classes, d_model)(tokens)
    for _ in range(int(ctx.args["layers"])):
        attention = layers.MultiHeadAttention(heads, d_model // heads, dropout=0.1)(x, x)
        x = layers.LayerNormalization(epsilon=1e-5)(x + layers.Dropout(0.1)(attention))
        hidden = layers.Dropout(0.1)(layers.Dense(4 * d_model, activation="relu")(x))
        x = layers.LayerNormalization(epsilon=1e-5)(
            x + layers.Dropout(0.1)(layers.Dense(d_model)(hidden))
        )
    return keras.Model(tokens, layers.Dense(ctx.num_classes)(x), name="embedding_lm")


@register_workload(
    "tf",
    "keras_mnist_cnn",
    input_shape=(28, 28, 1),
    num_classes=10,
    min_image_size=6,
    recipe=SEED_KERAS_MNIST,
)
def build_keras_mnist_cnn(ctx: BuildContext) -> Any:
    """Keras's MNIST convnet (the TF reproducibility notebook's): conv 32, conv 64, Adadelta."""
    from keras import layers

    return _sequential(
        ctx,
        layers.Conv2D(32, 3, activation="relu"),
        layers.Conv2D(64, 3, activation="relu"),
        layers.MaxPooling2D(2),
        layers.Dropout(0.25),
        layers.Flatten(),
        layers.Dense(128, activation="relu"),
        layers.Dropout(0.5),
        layers.Dense(ctx.num_classes),
    )


@register_workload(
    "tf",
    "calibrate",
    input_shape=(512,),
    num_classes=512,
    input_kind="features",
    arguments=CALIBRATE_ARGS,
    applies_knobs=False,
)
def build_calibrate(ctx: BuildContext) -> Any:
    """Known truth in time: `layers` Dense layers; deterministic mode adds `overhead` x step time.

    The TensorFlow twin of torch's calibrate: extra products sized after warm-up to `overhead`
    x the measured step time (`nnr_profile.workloads.injection`); no determinism knob is set.
    """
    from keras import layers

    from nnr_profile.workloads.injection import calibrate_shares
    from nnr_profile.workloads.tf.injected import InjectedWork

    width = ctx.input_shape[0]
    body = [layers.Dense(width, activation="relu") for _ in range(int(ctx.args["layers"]))]
    share, probe_share = calibrate_shares(ctx.args["overhead"], ctx.mode)
    return _sequential(ctx, *body, InjectedWork(width, share, probe_share))
