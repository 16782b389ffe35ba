# syntax=docker/dockerfile:1
# The one Coelho image: Dagster code server and run workers, the API, the producers, MLflow
# and the chart's Jobs. Roles: `docker run IMAGE api|producers|code-server|mlflow`, or any
# command (Dagster's run launcher passes `dagster api execute_run ...`).
ARG PYTHON_VERSION=3.11
FROM python:${PYTHON_VERSION}-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    COELHO_HOME=/home/coelho/.coelho \
    DAGSTER_HOME=/opt/dagster/dagster_home

# tini reaps zombies and forwards signals; libgomp1 for CatBoost and scikit-learn.
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini libgomp1 \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --gid 10001 coelho \
    && useradd --uid 10001 --gid 10001 --create-home --home-dir /home/coelho --shell /usr/sbin/nologin coelho

WORKDIR /opt/coelho

# Dependencies first, at the locked versions (the runtime set plus boto3 for MLflow's S3
# artifact store and the bucket Job): this layer only changes when the lock does.
COPY requirements.lock ./
RUN pip install -r requirements.lock

# Then the code.
COPY pyproject.toml README.md definitions.py workspace.yaml ./
COPY coelho ./coelho
COPY coelho_pipelines ./coelho_pipelines
COPY coelho_serving ./coelho_serving
COPY deploy/docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
RUN pip install --no-deps . \
    && mkdir -p "$DAGSTER_HOME" "$COELHO_HOME" \
    && chown -R coelho:coelho "$DAGSTER_HOME" /home/coelho

USER 10001:10001
EXPOSE 3030 8000 9100 9200 5000
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/docker-entrypoint.sh"]
CMD ["coelho", "--help"]
