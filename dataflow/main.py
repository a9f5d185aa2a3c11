"""The Flex Template's pipeline file: the same entry point `saikika batch` and the local launcher run."""

from saikika.cloud import batch_pipeline

if __name__ == "__main__":
    batch_pipeline.main()
