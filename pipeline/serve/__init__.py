"""The prediction service: digits over HTTP, from the model the pipeline exports.

    python -m pipeline.serve [--model PATH] [--host 127.0.0.1] [--port 8000]   (__main__.py)
    from pipeline.serve.app import create_app                                  (app.py)

app.py is the FastAPI app: POST /predict, GET /healthz, GET /model, and the limits that keep a
bad or hostile request from costing more than a bounded amount of memory and time; __main__.py
binds the socket and runs the app in uvicorn. The LiteRT model answers when the export stage
has made it (no TensorFlow import: the service starts in about a second), else the Keras one.
See docs/serve.md.
"""
