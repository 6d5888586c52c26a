# The eligibility service image: gunicorn serving service.web.wsgi (and `eligibility worker` with
# another command). Settings come from the environment; see docker-compose.yml and docs/configuration.md.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Install the package first (its own layer), then the data files it reads at run time.
COPY pyproject.toml README.md ./
COPY service ./service
RUN pip install .
COPY mappings ./mappings
COPY seeds ./seeds

# The package is installed into site-packages, so point it at the data files explicitly.
# The SQLite queue is only a fallback for `docker run` without compose (compose uses Redis).
ENV MAPPINGS_DIR=/app/mappings \
    SEEDS_DIR=/app/seeds \
    QUEUE_URL=sqlite:////app/var/queue.sqlite \
    BIND=0.0.0.0:8000

# Compose mounts named volumes on /var/lib/eligibility (accounts), /var/log/eligibility (audit)
# and /var/lib/eligibility-metrics; a new volume takes these folders' owner.
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin eligibility \
    && mkdir -p /app/var /var/lib/eligibility /var/log/eligibility /var/lib/eligibility-metrics \
    && chown eligibility /app/var /var/lib/eligibility /var/log/eligibility \
       /var/lib/eligibility-metrics
USER eligibility

EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
CMD ["gunicorn", "-c", "python:service.web.gunicorn_conf", "service.web.wsgi:build()"]
