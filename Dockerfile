# The pipeline's image for Kubeflow: every component runs in it. The project is installed with
# the exact versions in constraints.txt, the file .venv is built from, so the image and a local
# run cannot drift apart. Build: docker build -t REGISTRY/imdb-bert-tfx:0.1.0 .
FROM python:3.10.13-slim

# kubeflow_runner.py points ImportSchemaGen at the schema under this folder.
WORKDIR /imdb-bert-tfx
COPY pyproject.toml constraints.txt README.md ./
COPY pipeline pipeline
COPY components components
COPY modules modules
RUN pip install --no-cache-dir -c constraints.txt . \
    && python -c 'import tfx, tensorflow_transform, keras_hub, modules.preprocessing'
