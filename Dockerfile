# archiver: the daemon in a slim image, as a non-root user.
#   docker build -t archiver .
#   docker run --env-file .env -v $PWD/config.toml:/etc/archiver/config.toml:ro archiver run
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY archiver ./archiver
COPY migrations ./migrations
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/archiver --create-home archiver
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER archiver
WORKDIR /var/lib/archiver
ENV ARCHIVER_CONFIG=/etc/archiver/config.toml \
    PYTHONUNBUFFERED=1
EXPOSE 9108
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:9108/healthz', timeout=4).status != 200)"]
ENTRYPOINT ["archiver", "--log-format", "json"]
CMD ["run"]
