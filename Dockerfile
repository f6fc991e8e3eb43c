# One image for every role (web, worker, beat, first training); docker-compose.yml picks the
# command. Build: docker build -t movierec .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MOVIEREC_OUTPUT=/app/output \
    MOVIEREC_DATA=/data

WORKDIR /app
COPY pyproject.toml README.md ./
COPY pipeline ./pipeline
COPY store ./store
COPY resilience ./resilience
COPY cache ./cache
COPY db ./db
COPY tasks ./tasks
COPY service ./service
COPY web ./web
RUN pip install . \
    && useradd --create-home --uid 1000 movierec \
    && mkdir -p /app/output \
    && chown movierec:movierec /app/output

USER movierec
EXPOSE 8000
# Inside the container the server must listen on all interfaces; the compose file publishes
# the port on the host's 127.0.0.1 only.
CMD ["movierec", "web", "--bind", "0.0.0.0:8000"]
