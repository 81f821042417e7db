"""Serve translation and classification checkpoints over HTTP, with a demo page.

    python -m nmt.serve CKPT [CKPT ...] [--host 127.0.0.1] [--port 8000]

* :mod:`nmt.serve.app`: the routes (``POST /translate``, ``POST /classify``, ``GET /models``,
  ``GET /health``, the page at ``/``) and the error answers;
* :mod:`nmt.serve.batcher`: dynamic batching of concurrent requests, off the event loop,
  with a bounded queue;
* :mod:`nmt.serve.models`: checkpoints -> served models and their descriptions;
* :mod:`nmt.serve.schemas`: request and response schemas, input limits and text checks;
* ``static/``: the page (plain HTML, CSS and JavaScript; nothing fetched from elsewhere).

Needs the ``serve`` extra: ``pip install -e ".[serve]"``.
"""
