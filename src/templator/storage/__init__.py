"""The object store over the S3 protocol (MinIO, SeaweedFS, AWS S3) for uploads and modules."""
