"""The library both the gRPC server and the Celery workers use: no gRPC and no Celery in here."""
