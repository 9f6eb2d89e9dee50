"""Process lifecycle shared by the gunicorn hooks and long-running responses.

gunicorn's graceful shutdown waits for requests to finish, but a watch never finishes on
its own; streams poll :data:`stopping` and end cleanly (with a final chunk) when it is set.
"""

from __future__ import annotations

import threading

stopping = threading.Event()
