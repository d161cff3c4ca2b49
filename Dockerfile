# Image of the revenue-intelligence worker; entrypoint is the `revintel` CLI
# (`docker run IMAGE run|migrate|produce-sample|show ...`). Used by docker-compose.yml.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Package sources first, then `pip install .` (non-editable: the code lives in site-packages).
COPY pyproject.toml README.md ./
COPY schemas ./schemas
COPY worker ./worker
RUN pip install . && rm -rf build ./*.egg-info

# `revintel migrate` reads the numbered SQL files from ./sql (the working directory).
COPY sql ./sql

RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin revintel
USER revintel

ENTRYPOINT ["revintel"]
CMD ["run"]
