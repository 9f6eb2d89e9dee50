# The API server image (the controller runs from it too). Dependencies are built in a throwaway
# stage; the final image has Python, the virtualenv and the code, no compilers, and runs as an
# unprivileged user. The command is the Procfile's web process.
FROM python:3.11-slim AS build
WORKDIR /app
COPY requirements.txt .
# Only the runtime part of requirements.txt: the tests' tools stay out of the image.
RUN sed '/^# Tests and checks/,$d' requirements.txt > runtime.txt \
    && python -m venv /venv \
    && /venv/bin/pip install --no-cache-dir --disable-pip-version-check -r runtime.txt

FROM python:3.11-slim
ENV PATH=/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
RUN groupadd --gid 10001 app && useradd --uid 10001 --gid app --no-create-home app
COPY --from=build /venv /venv
WORKDIR /app
COPY Procfile ./
COPY proxy proxy
COPY handlers handlers
COPY store store
COPY k8s k8s
USER 10001:10001
EXPOSE 8443
CMD ["gunicorn", "--config", "proxy/gunicorn.conf.py", "proxy.app:create_app()"]
