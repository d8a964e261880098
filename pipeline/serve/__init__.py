"""The prediction service: digits over HTTP, from the model the pipeline exports.

    python -m pipeline.serve [--model PATH] [--host 127.0.0.1] [--port 8000]   (command.py)
    from pipeline.serve.app import create_app                                  (app.py)

app.py holds the routes (POST /predict, GET /healthz, /readyz, /model and the page), limits.py
what keeps a bad or hostile request within a bounded amount of memory and time, uploads.py the
reading of a request's images, decoders.py the processes that decode them, holder.py the model
following its file, identity.py what /model says about it, server.py uvicorn and its workers.
The LiteRT model answers when the export stage has made it (no TensorFlow import), else the
Keras one. See docs/serve.md.
"""
