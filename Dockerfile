# Product Staging Studio — CPU image running the web app on its offline default.
# GPU users: start from an nvidia/cuda runtime image and add onnxruntime-gpu (and torch).
FROM python:3.11-slim

ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1 \
    STAGING_MODELS_DIR=/models GRADIO_SERVER_NAME=0.0.0.0
RUN apt-get update && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY requirements.txt pyproject.toml README.md ./
COPY staging ./staging
# pymatting compiles its numba kernels at first import (~1 min): once, at build time.
RUN pip install -r requirements.txt -e . && python -c "import pymatting"
COPY app.py ./
COPY examples ./examples

# Mount pretrained weights here (`staging models pull NAME` writes here too).
VOLUME ["/models"]
EXPOSE 7860
CMD ["python", "app.py"]
