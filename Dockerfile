# Worker image for Dataflow (--sdk_container_image=IMAGE) and for Flink / the portable runner
# (--environment_type=DOCKER --environment_config=IMAGE): Beam's Python SDK image of the pinned version with
# this package and its pinned dependencies installed, so workers start without building anything.
#
#   docker build -t REGION-docker.pkg.dev/PROJECT/REPO/colorize:0.1.0 .
#   docker push REGION-docker.pkg.dev/PROJECT/REPO/colorize:0.1.0
#
# The tag below must match apache-beam in setup.py (tests/test_dataflow.py checks it).
FROM apache/beam_python3.11_sdk:2.77.0

ENV TF_CPP_MIN_LOG_LEVEL=2 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/colorize
COPY setup.py README.md ./
COPY colorize_tf ./colorize_tf
COPY transforms ./transforms
COPY pipelines ./pipelines
RUN pip install ".[gcp]" && python -c "import colorize_tf.colorize, transforms.fs, pipelines.train, cv2.ximgproc"

# the SDK harness entry point of the base image stays the entry point
ENTRYPOINT ["/opt/apache/beam/boot"]
