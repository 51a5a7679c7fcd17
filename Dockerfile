# The pipeline's one image: every Kubeflow / Vertex AI task runs in it, and so do the Beam workers
# of Dataflow (`--sdk_container_image`) and of Flink or Spark in a Docker environment
# (`--environment_config`); kubeflow_runner.py passes it to Beam for those runners. It starts
# from the Beam Python SDK image of the pinned Beam (its /opt/apache/beam/boot entrypoint is what
# Beam's workers start; a KFP task's command replaces it) and installs the project with the
# exact versions in constraints.txt, the file .venv is built from, so the image and a local run
# cannot drift apart.
# Build: docker build -t REGISTRY/imdb-bert-tfx:0.1.0 .
FROM apache/beam_python3.10_sdk:2.59.0

# kubeflow_runner.py points ImportSchemaGen at the schema under this folder.
WORKDIR /imdb-bert-tfx
COPY pyproject.toml constraints.txt README.md local_runner.py kubeflow_runner.py ./
COPY pipeline pipeline
COPY components components
COPY modules modules
COPY cli cli
RUN pip install --no-cache-dir -c constraints.txt . \
    && python -c 'import tfx, tensorflow_transform, keras_hub, modules.preprocessing'
