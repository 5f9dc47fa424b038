"""The engine: the Qt-free core that indexes, stores and searches photos.

Everything the CLI and the GUI do goes through ``search.Library``.

Importing any engine module first turns ONNX Runtime's telemetry off: some
onnxruntime-gpu builds send usage events from native code (DNS look-ups for their
telemetry host after a few seconds) unless this is set before the library loads,
and the app promises no network traffic (tests/reliability/test_no_network.py).
"""

import os

os.environ["ORT_DISABLE_TELEMETRY"] = "1"
