"""``python -m es_triton``: run the Triton inference server (see ``es_triton.server``)."""

import sys

from es_triton.server import main

sys.exit(main())
