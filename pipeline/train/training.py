"""Train a model on prepared arrays: seeded, deterministic, one progress line per epoch."""

import time
from typing import Any

import numpy as np

from pipeline.core.artifacts import LEARNING_CURVE_COLUMNS
from pipeline.core.config import TrainConfig
from pipeline.core.datasets import IMAGE_SHAPE, NUM_CLASSES
from pipeline.core.tf import keras, make_deterministic, tensorflow
from pipeline.predict.runners import INFERENCE_BATCH
from pipeline.train import rendered
from pipeline.train.models import average, build_network

Split = tuple[np.ndarray, np.ndarray]  # images, labels
Curve = list[dict[str, float]]  # a row per epoch: LEARNING_CURVE_COLUMNS


# Elastic distortion: Simard et al. (2003) found a Gaussian of 4 pixels best on MNIST's 28x28
# digits; a smaller one makes the field pixel noise, a larger one barely differs from an affine move.
ELASTIC_SIGMA = 4.0
# The noise the Gaussian smooths is drawn on a lattice this many pixels apart, not at every pixel:
# the sum over the lattice of two Gaussians of sigma 4 is their integral to 1e-4 (Poisson
# summation: exp(-pi^2 sigma^2 / spacing^2)), so the field has the same statistics as Simard's
# smoothed per-pixel noise, from 14x fewer random numbers and two small matrix products instead
# of a 25-tap convolution, which cost several times more an epoch than the affine warp alone.
ELASTIC_SPACING = 4.0


def augmenter(params: TrainConfig, seed: int) -> Any:
    """Random shift, rotation, zoom, stroke width and elastic distortion of a batch of
    (N, 28, 28, 1) images, seeded.

    One affine transform per image, drawn uniformly within the `augment_*` limits, and with
    `augment_elastic` a smooth random displacement field added to it, applied in a single
    resampling pass: Keras' RandomTranslation, RandomRotation and RandomZoom resample three
    times, which cost as much CPU as training the `cnn` itself, and each pass blurs the digit
    again. The stroke change (`change_stroke`) comes before that pass: it is the writer's pen,
    drawn before the page is moved, zoomed or bent, and the resampling then smooths the square
    steps a 3x3 maximum leaves at stroke ends and corners.

    The random numbers are drawn in a fixed order (the affine ones, then the stroke widths, then
    the fields), each only when its option is on: with `augment_stroke` and `augment_elastic` 0,
    the images are those the affine augmentation alone gave, byte for byte.
    """
    ops, random = keras().ops, keras().random
    seeds = random.SeedGenerator(seed)
    rows, cols = IMAGE_SHAPE
    centre_y, centre_x = (rows - 1) / 2, (cols - 1) / 2
    turn = params.augment_rotation * np.pi / 180
    stroke_steps = int(np.ceil(params.augment_stroke / 2))  # 3x3 steps widen a stroke 2 pixels each
    smooth = smoothing(rows, ELASTIC_SIGMA, ELASTIC_SPACING)
    lattice = smooth.shape[1]

    def uniform(count: Any, limit: float, centre: float = 0.0) -> Any:
        return random.uniform((count,), centre - limit, centre + limit, seed=seeds)

    def augment(images: Any) -> Any:
        count = ops.shape(images)[0]
        angle, scale = uniform(count, turn), uniform(count, params.augment_zoom, 1.0)
        shift_x = uniform(count, params.augment_shift * cols)
        shift_y = uniform(count, params.augment_shift * rows)
        # Each output pixel (x, y) reads the input at scale * rotation * ((x, y) - centre) + centre - shift.
        cos, sin = scale * ops.cos(angle), scale * ops.sin(angle)
        offset_x = centre_x - cos * centre_x + sin * centre_y - shift_x
        offset_y = centre_y - sin * centre_x - cos * centre_y - shift_y
        if params.augment_stroke:
            images = change_stroke(images, uniform(count, params.augment_stroke), stroke_steps)
        if params.augment_elastic:
            noise = random.normal((count, 2, lattice, lattice), seed=seeds)
            # (N, 2, 28, 28): each output pixel's displacement, x and y, on top of the affine one
            fields = ops.matmul(ops.matmul(smooth, noise), smooth.T) * params.augment_elastic
            y, x = (ops.convert_to_tensor(grid, dtype="float32") for grid in np.indices((rows, cols)))
            c, s, dx, dy = (value[:, None, None] for value in (cos, sin, offset_x, offset_y))  # against (N, 28, 28)
            return resample(images, c * x - s * y + dx + fields[:, 0], s * x + c * y + dy + fields[:, 1])
        zero = ops.zeros_like(cos)
        transforms = ops.stack([cos, -sin, offset_x, sin, cos, offset_y, zero, zero], axis=1)
        return ops.image.affine_transform(
            images, transforms, fill_mode="constant", fill_value=0.0
        )  # MNIST's background

    return augment


def smoothing(side: int, sigma: float, spacing: float) -> np.ndarray:
    """The (side, lattice) matrix S that smooths unit noise N on a lattice `spacing` pixels apart
    by a Gaussian of `sigma` onto an image's pixels, per axis: the field is S N S^T.

    The lattice is centred on the image and reaches 3 sigma past its border (a point further
    out would weigh under 1%); each row is scaled to a sum of squares of 1, so that every pixel's
    displacement has an RMS of 1 (then times `augment_elastic`), at the border as in the middle.
    """
    reach = (side - 1) / 2 + 3 * sigma
    points = int(np.ceil(2 * reach / spacing)) + 1
    lattice = (side - 1) / 2 + spacing * (np.arange(points) - (points - 1) / 2)
    weights = np.exp(-0.5 * ((np.arange(side)[:, None] - lattice[None, :]) / sigma) ** 2)
    return (weights / np.sqrt((weights**2).sum(axis=1, keepdims=True))).astype(np.float32)


def change_stroke(images: Any, widths: Any, steps: int) -> Any:
    """Each (N, 28, 28, 1) image's strokes `widths` (N,) pixels wider, or narrower where negative.

    A 3x3 grey dilation (the maximum over each pixel's neighbourhood) adds a pixel on each side
    of a stroke, an erosion (the minimum) removes one; half a pixel on each side is the image
    halfway between (its edge pixels half inked), so a straight stroke of width w has w + width
    of ink across it. `steps` is the most 3x3 steps any width needs: ceil(max |width| / 2).
    """
    ops = keras().ops
    sign = ops.where(widths < 0, -1.0, 1.0)[:, None, None, None]
    side = ops.abs(widths)[:, None, None, None] / 2  # pixels on each side
    level = sign * images  # dilating -x erodes x: one maximum per step serves both ways
    changed = ops.maximum(1.0 - side, 0.0) * level
    for step in range(1, steps + 1):
        level = ops.max_pool(level, 3, strides=1, padding="same")
        changed = changed + ops.maximum(1.0 - ops.abs(side - step), 0.0) * level  # between the steps either side
    return sign * changed


# A 2x2 convolution whose four filters copy a pixel, its right, lower and lower-right neighbour.
CORNERS = np.eye(4, dtype=np.float32).reshape(2, 2, 1, 4)


def resample(images: Any, source_x: Any, source_y: Any) -> Any:
    """(N, R, C, 1) images read at (N, R, C) input coordinates (column, row) per output pixel,
    bilinearly, outside the image 0: what `ops.image.affine_transform` does, for any mapping.

    The four pixels around each point come from one gather, of rows of four made by a 2x2
    convolution: a gather costs per index, and four gathers of one pixel each made this 1.6x slower.
    """
    ops = keras().ops
    count, rows, cols = ops.shape(images)[0], images.shape[1], images.shape[2]
    # Background around the image, 1 pixel before and 2 after: a coordinate clipped to
    # [-1, side] then has all four neighbours in it, and one outside reads only background.
    padded = ops.pad(images, [[0, 0], [1, 2], [1, 2], [0, 0]])
    corners = ops.reshape(ops.conv(padded, CORNERS), (-1, 4))  # per pixel of the (R+2, C+2) grid
    x = ops.clip(source_x, -1.0, float(cols))
    y = ops.clip(source_y, -1.0, float(rows))
    x_floor, y_floor = ops.floor(x), ops.floor(y)
    first = ops.reshape(ops.arange(count, dtype="int32") * ((rows + 2) * (cols + 2)), (-1, 1, 1))
    index = first + ops.cast(y_floor + 1, "int32") * (cols + 2) + ops.cast(x_floor + 1, "int32")
    near = ops.take(corners, index, axis=0)  # (N, R, C, 4)
    # Along x on the rows above and below, then along y.
    right, down = x - x_floor, y - y_floor
    above = near[..., 0] + right * (near[..., 1] - near[..., 0])
    below = near[..., 2] + right * (near[..., 3] - near[..., 2])
    return (above + down * (below - above))[..., None]


def batches(
    images: np.ndarray,
    labels: np.ndarray,
    batch_size: int,
    seed: int | None = None,
    augment: Any = None,
    one_hot: bool = False,
) -> Any:
    """A tf.data pipeline: reshuffled every epoch when given a seed, augmented when asked, labels
    one-hot when asked."""
    tf = tensorflow()
    if one_hot:
        labels = np.eye(NUM_CLASSES, dtype=np.float32)[labels.astype(np.int64)]
    dataset = tf.data.Dataset.from_tensor_slices((images, labels))
    if seed is not None:
        dataset = dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size)
    if augment is not None:
        dataset = dataset.map(
            lambda x, y: (augment(x[..., None])[..., 0], y),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    return dataset.prefetch(tf.data.AUTOTUNE).with_options(without_autotuning())


def without_autotuning() -> Any:
    """tf.data options that turn off its autotuning thread.

    Deleting an iterator waits for that thread to wake from its sleep between tuning rounds:
    after the last epoch, training sat idle for 0-20 s (docs/speed.md). Without it, AUTOTUNE
    above means a map call per core (up to 16) and a prefetch buffer that grows whenever the
    model finds it empty, which kept every epoch as fast.
    """
    options = tensorflow().data.Options()
    options.autotune.enabled = False
    return options


def choose_devices(setting: str, devices: list[str]) -> list[str] | None:
    """The devices to mirror training over, or None for TensorFlow's default placement.

    One GPU (or none) needs no strategy: TensorFlow places the work on it by itself.
    """
    if setting == "off" or len(devices) < 2:
        return None
    return devices


def strategy(setting: str, device_type: str = "GPU") -> Any:
    """MirroredStrategy over every visible device of `device_type` when `choose_devices` says so."""
    tf = tensorflow()
    names = [device.name for device in tf.config.list_logical_devices(device_type)]
    devices = choose_devices(setting, names)
    return tf.distribute.MirroredStrategy(devices) if devices else tf.distribute.get_strategy()


def learning_rate(params: TrainConfig, steps_per_epoch: int) -> Any:
    """Adam's rate per step: `schedule` after a linear warm-up from 0 over `warmup` of the steps."""
    total = params.epochs * steps_per_epoch
    warmup = round(params.warmup * total)
    schedules = keras().optimizers.schedules
    if warmup == 0:
        if params.schedule == "cosine":
            return schedules.CosineDecay(params.learning_rate, total)
        return params.learning_rate
    # After the warm-up, a cosine decays to alpha x the rate: 0 for cosine, 1 (none) for constant.
    alpha = 0.0 if params.schedule == "cosine" else 1.0
    return schedules.CosineDecay(
        0.0, total - warmup, alpha=alpha, warmup_target=params.learning_rate, warmup_steps=warmup
    )


def loss(params: TrainConfig) -> Any:
    """Cross-entropy on integer labels; on one-hot labels when smoothing them (`batches(one_hot=)`),
    since Keras' sparse loss has no label smoothing."""
    if params.label_smoothing:
        return keras().losses.CategoricalCrossentropy(label_smoothing=params.label_smoothing)
    return "sparse_categorical_crossentropy"


def with_collected(train: Split, collected: Split, repeat: int) -> Split:
    """MNIST's training split followed by the collected digits, each `repeat` times: their weight.

    With no collected digits (or `repeat` 0) `train` itself, so the run is today's byte for byte;
    the tf.data pipeline shuffles the copies in among the rest every epoch.
    """
    if repeat == 0 or len(collected[1]) == 0:
        return train
    images = np.concatenate([train[0], np.tile(collected[0], (repeat, 1, 1))])
    return images, np.concatenate([train[1], np.tile(collected[1], repeat)])


def fit(
    train: Split, val: Split, params: TrainConfig, seed: int, log: Any = print, device_type: str = "GPU"
) -> tuple[Any, Curve]:
    """Build, compile and train the configured model; return it and its learning curve
    (loss and accuracy per epoch).

    With `ensemble` > 1, each member is trained as one network would be, from seed
    `member_seed(seed, k)`, one after another; the model returned averages their probabilities
    (`models.average`) and the curve is the members' mean. `device_type` is what
    `train.distribute: auto` spreads over; tests pass "CPU" to split the CPU into logical devices.
    With `augment_rendered` > 0, that share of the training digits is replaced first, once, by
    the served path's reading of their rendering (`rendered.swap_in`), for every member alike.
    """
    train = (rendered.swap_in(train[0], params.augment_rendered, seed), train[1])
    if params.ensemble == 1:
        return fit_network(train, val, params, seed, log, device_type)
    members, curves = [], []
    for k in range(params.ensemble):
        prefix = f"member {k + 1}/{params.ensemble}  "
        member_log = lambda line, prefix=prefix: log(prefix + line)  # noqa: E731 (bound now, not at call time)
        member, curve = fit_network(train, val, params, member_seed(seed, k), member_log, device_type)
        members.append(member)
        curves.append(curve)
    model = average(members)
    # Compiled as each member was, with the optimizer's state built (fresh), so that the saved
    # model loads compiled without warnings and can be evaluated or trained on.
    compile_model(model, params, len(train[0]))
    model.optimizer.build(model.trainable_variables)
    columns = LEARNING_CURVE_COLUMNS[1:]
    curve = [
        {"epoch": rows[0]["epoch"], **{key: float(np.mean([row[key] for row in rows])) for key in columns}}
        for rows in zip(*curves)
    ]
    return model, curve


def member_seed(seed: int, k: int) -> int:
    """The seed of an ensemble's member k: `seed` for the first, so an ensemble's first member is
    the network a single run trains; 1000 apart, so that runs with seeds 1, 2, 3 share no member."""
    return (seed + 1000 * k) % 2**32


def fit_network(
    train: Split, val: Split, params: TrainConfig, seed: int, log: Any = print, device_type: str = "GPU"
) -> tuple[Any, Curve]:
    """Build, compile and train one network, seeded by `seed`; return it and its learning curve."""
    make_deterministic(seed)
    with strategy(params.distribute, device_type).scope():
        model = build_network(params)
        compile_model(model, params, len(train[0]))
    augment = augmenter(params, seed) if params.augment else None
    one_hot = params.label_smoothing > 0
    result = model.fit(
        batches(*train, params.batch_size, seed=seed, augment=augment, one_hot=one_hot),
        validation_data=batches(*val, INFERENCE_BATCH, one_hot=one_hot),
        epochs=params.epochs,
        shuffle=False,  # the tf.data pipeline already reshuffles every epoch
        verbose=0,
        callbacks=[epoch_log(params.epochs, log)],
    )
    curve = [
        {"epoch": epoch + 1, **{key: float(result.history[key][epoch]) for key in LEARNING_CURVE_COLUMNS[1:]}}
        for epoch in range(params.epochs)
    ]
    return model, curve


def compile_model(model: Any, params: TrainConfig, images: int) -> None:
    """Adam on the configured rate schedule over `images` per epoch, the configured loss, accuracy."""
    steps_per_epoch = -(-images // params.batch_size)
    model.compile(
        optimizer=keras().optimizers.Adam(learning_rate=learning_rate(params, steps_per_epoch)),
        loss=loss(params),
        metrics=["accuracy"],
    )


def epoch_log(epochs: int, log: Any) -> Any:
    """A callback printing one line per epoch instead of Keras' progress bars."""
    started = {}

    def begin(epoch: int, logs: dict | None = None) -> None:
        started["time"] = time.perf_counter()

    def end(epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        figures = "  ".join(f"{key} {logs[key]:.4f}" for key in LEARNING_CURVE_COLUMNS[1:] if key in logs)
        seconds = time.perf_counter() - started["time"]
        log(f"epoch {epoch + 1:>{len(str(epochs))}}/{epochs}  {figures}  ({seconds:.1f} s)")

    return keras().callbacks.LambdaCallback(on_epoch_begin=begin, on_epoch_end=end)
