"""TensorFlow workloads: keras.applications models, the study's small models, and `calibrate`.

Names match the PyTorch twins (resnet50, inception_v3, efficientnet_b0, ...) so that
`--framework all` compares one architecture across frameworks. Models return logits
(`classifier_activation=None`); the loss applies the softmax, as in PyTorch. Builders import
keras lazily so that registering them costs nothing.
"""

from __future__ import annotations

from typing import Any

from nnr_profile.workloads.checks import (
    CALIBRATE_ARGS,
    EMBEDDING_LM_ARGS,
    LENET_ARGS,
    MEDIUMCNN_ARGS,
    MLP_ARGS,
    SMALLCNN_ARGS,
    check_embedding_lm,
)
from nnr_profile.workloads.registry import BuildContext, register_workload

IMAGENET = {"input_shape": (224, 224, 3), "num_classes": 1000, "input_kind": "image"}
BN = {"momentum": 0.9, "epsilon": 1e-5}
"""BatchNormalization settings equal to PyTorch's defaults (momentum 0.1 there)."""

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


def _application_builder(class_name: str):
    def build(ctx: BuildContext) -> Any:
        import keras

        return getattr(keras.applications, class_name)(
            weights=None,
            input_shape=ctx.input_shape,
            classes=ctx.num_classes,
            classifier_activation=None,
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
    )(_application_builder(_class))


def _sequential(ctx: BuildContext, *layers: Any) -> Any:
    import keras

    return keras.Sequential([keras.Input(shape=ctx.input_shape), *layers])


@register_workload(
    "tf",
    "smallcnn",
    input_shape=(32, 32, 3),
    num_classes=10,
    min_image_size=4,
    arguments=SMALLCNN_ARGS,
)
def build_smallcnn(ctx: BuildContext) -> Any:
    """The study's small CNN: conv3x3 16/32/32 (BatchNorm if bn), GAP, dense 32, dense 10."""
    from keras import layers

    blocks: list[Any] = []
    for width in (16, 32, 32):
        blocks.append(layers.Conv2D(width, 3, padding="same"))
        if ctx.args["bn"]:
            blocks.append(layers.BatchNormalization(**BN))
        blocks.append(layers.ReLU())
    return _sequential(
        ctx,
        *blocks,
        layers.GlobalAveragePooling2D(),
        layers.Dense(32, activation="relu"),
        layers.Dense(ctx.num_classes),
    )


@register_workload(
    "tf",
    "mediumcnn",
    min_image_size=64,
    arguments=MEDIUMCNN_ARGS,
    **IMAGENET,
)
def build_mediumcnn(ctx: BuildContext) -> Any:
    """The study's medium CNN: 6 x (conv kxk, BatchNorm, ReLU, maxpool), 16->512 ch, GAP, dense."""
    from keras import layers

    kernel = int(ctx.args["kernel"])
    blocks: list[Any] = []
    for width in (16, 32, 64, 128, 256, 512):
        blocks += [
            layers.Conv2D(width, kernel, padding="same"),
            layers.BatchNormalization(**BN),
            layers.ReLU(),
            layers.MaxPooling2D(2),
        ]
    return _sequential(ctx, *blocks, layers.GlobalAveragePooling2D(), layers.Dense(ctx.num_classes))


@register_workload("tf", "resnet18", min_image_size=32, **IMAGENET)
def build_resnet18(ctx: BuildContext) -> Any:
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
    return keras.Model(inputs, layers.Dense(ctx.num_classes)(x), name="resnet18")


@register_workload(
    "tf",
    "lenet",
    input_shape=(28, 28, 1),
    num_classes=10,
    min_image_size=28,
    arguments=LENET_ARGS,
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
    optimizer="adadelta",
    learning_rate=1.0,
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
