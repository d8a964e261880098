"""Export the trained model for deployment, and score each exported form on the test set.

Reads models/model.keras, data/prepared/{train,test}.npz and metrics/predictions.csv (the Keras
model's answers); writes models/saved_model/1/, models/model_float32.tflite,
models/model_int8.tflite and metrics/export.json.
"""

import os

from pipeline.core import artifacts, cli, config, paths
from pipeline.predict import runners
from pipeline.train import export


def main() -> None:
    params = config.load()
    model = runners.load_model(paths.MODEL, compile=False)
    train_images, _ = artifacts.load_split(paths.prepared("train"))
    test_images, labels = artifacts.load_split(paths.prepared("test"))
    _, keras_predicted, _ = artifacts.load_predictions(paths.PREDICTIONS)
    sample = export.representative_sample(train_images, params.export.representative_images, params.seed)
    litert_models = {"litert_float32": export.to_litert(model), "litert_int8": export.to_litert(model, sample)}
    version_dir = export.save_saved_model(model, paths.SAVED_MODEL)
    probabilities = export.saved_model_probabilities(version_dir, test_images, runners.INFERENCE_BATCH)
    scores = {
        "saved_model": export.scores(probabilities, labels, keras_predicted, export.folder_size(paths.SAVED_MODEL))
    }
    for (name, content), path in zip(litert_models.items(), (paths.LITERT_FLOAT32, paths.LITERT_INT8)):
        artifacts.write_bytes(path, content)
        # Every core: the stage has the machine to itself, and more threads give the same bytes.
        probabilities = runners.LiteRTModel(content, str(path), threads=os.cpu_count())(test_images)
        scores[name] = export.scores(probabilities, labels, keras_predicted, len(content))
    artifacts.save_json(paths.EXPORT_METRICS, scores)
    for name, score in scores.items():
        cli.log(
            f"{name}: test accuracy {score['test_accuracy']:.4f}, agrees with Keras on "
            f"{score['agreement']:.2%}, {score['size_bytes']:,} bytes"
        )


if __name__ == "__main__":
    cli.run(main, skip_teardown=True)  # past TensorFlow's teardown (see cli.run)
