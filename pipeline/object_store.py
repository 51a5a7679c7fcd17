"""Zero-byte folder markers on object stores, and their removal from artifacts.

TensorFlow's GCS file system writes an empty object `NAME/` for every folder it creates
(`tf.io.gfile.makedirs`, and each SavedModel's `variables/` and `assets/`). Kubeflow Pipelines'
launcher downloads an input artifact by listing its keys flat and writing each key as a local
file (kubeflow/pipelines `backend/src/v2/objectstore/object_store.go`, `DownloadBlob` and
`downloadFile`): the marker `NAME/` becomes a file `NAME`, and the next key under it fails with
"not a directory" (kubeflow/pipelines#13476). So an artifact must hold no markers once its
task ends; a folder on an object store is only a key prefix, and exists without one.
"""

from typing import Iterable, Optional, Protocol, Tuple


class Bucket(Protocol):
  """The two calls on a bucket that marker removal needs."""

  def list(self, prefix: str) -> Iterable[Tuple[str, int]]:
    """(key, size in bytes) of every object whose key starts with `prefix`, flat."""

  def delete(self, key: str) -> None:
    """Deletes the object `key`."""


class GcsBucket:
  """A Cloud Storage bucket through google-cloud-storage, with the task's default credentials."""

  def __init__(self, name: str):
    from google.cloud import storage  # pylint: disable=import-outside-toplevel
    self._bucket = storage.Client().bucket(name)

  def list(self, prefix: str) -> Iterable[Tuple[str, int]]:
    return ((blob.name, blob.size or 0) for blob in self._bucket.list_blobs(prefix=prefix))

  def delete(self, key: str) -> None:
    self._bucket.blob(key).delete()


def split_uri(uri: str) -> Tuple[str, str, str]:
  """(scheme, bucket, key) of `scheme://bucket/key`; ('', '', uri) for a local path."""
  if '://' not in uri:
    return '', '', uri
  scheme, rest = uri.split('://', 1)
  bucket, _, key = rest.partition('/')
  return scheme, bucket, key.rstrip('/')


def bucket_for(uri: str) -> Optional[Bucket]:
  """The bucket that holds `uri`, or None where folders are real (a local path).

  Raises:
    ValueError: a scheme whose markers this cannot list (one line, naming the URI).
  """
  scheme, bucket, _ = split_uri(uri)
  if not scheme:
    return None
  if scheme == 'gs':
    return GcsBucket(bucket)
  raise ValueError(f'{uri}: no object-store client for {scheme}:// to remove folder markers with')


def remove_folder_markers(uri: str, bucket: Optional[Bucket]) -> int:
  """Deletes every zero-byte `NAME/` object at or under `uri`; returns how many.

  Args:
    uri: An artifact's URI, `scheme://bucket/key`.
    bucket: The bucket that holds it (`bucket_for`); None: nothing to do.
  """
  if bucket is None:
    return 0
  prefix = split_uri(uri)[2] + '/'
  markers = [key for key, size in bucket.list(prefix) if key.endswith('/') and size == 0]
  for key in markers:
    bucket.delete(key)
  return len(markers)
