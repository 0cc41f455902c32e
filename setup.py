"""Package set-up; also what Beam workers install with ``--setup_file ./setup.py``."""

import setuptools

REQUIRED = [
    "apache-beam==2.77.0",
    "google-crc32c==1.9.0",
    "tensorflow-cpu==2.21.0",
    "keras==3.15.1",
    "protobuf==6.33.6",
    "numpy==2.4.6",
    "pyarrow==25.0.1",
    "opencv-contrib-python-headless==5.0.0.93",
    "scikit-image==0.26.0",
    "scikit-learn==1.9.1",
    "scipy==1.17.1",
    "pillow==12.3.0",
]

setuptools.setup(
    name="colorize-tf",
    version="0.1.0",
    description="Deep Colorization (Cheng, Yang, Sheng) at archive scale: Apache Beam + TensorFlow/Keras",
    long_description=open("README.md", encoding="utf-8").read() if __import__("os").path.exists("README.md") else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=setuptools.find_packages(
        include=["colorize_tf", "colorize_tf.*", "transforms", "transforms.*", "pipelines", "pipelines.*"]
    ),
    # the shipped general-purpose model (colorize_tf/models/general: model.json, fusion.keras, MODEL.md, ...)
    package_data={"colorize_tf": ["models/*/*.json", "models/*/*.keras", "models/*/*.npz", "models/*/*.md"]},
    include_package_data=True,
    install_requires=REQUIRED,
    extras_require={
        "test": ["pytest==9.2.0", "ruff==0.17.6", "apache-beam[gcp]==2.77.0"],
        "gcp": ["apache-beam[gcp]==2.77.0"],
        "tensorboard": ["tensorboard"],
    },
    entry_points={
        "console_scripts": [
            "colorize=pipelines.colorize:main",
            "colorize-features=pipelines.extract_features:main",
            "colorize-train=pipelines.train:main",
            "colorize-demo=pipelines.demo:main",
            "colorize-demo-train=pipelines.demo_train:main",
            "colorize-parser=pipelines.train_parser:main",
            "colorize-archive=pipelines.colorize_archive:main",
            "colorize-eval=pipelines.evaluate:main",
            "colorize-release=pipelines.release:main",
        ]
    },
)
