"""``python -m es_server``: the gRPC server alone (``es up`` starts it with everything else)."""

from __future__ import annotations

import asyncio
import logging

from es_core.config import get_settings
from es_server.app import serve


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(serve(get_settings()))


if __name__ == "__main__":
    main()
