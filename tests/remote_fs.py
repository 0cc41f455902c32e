"""A Beam filesystem ``fakeremote://`` that behaves like an object store (no directories, prefix listing),
backed by local files: ``fakeremote:///tmp/x/y`` is the local file ``/tmp/x/y``.

Defining the class registers it with Beam's FileSystems (looked up by scheme among FileSystem subclasses)
in this process, so jobs on the in-process runner can be given remote-style paths without network.
"""

import os
import shutil

from apache_beam.io.filesystem import FileMetadata, FileSystem
from apache_beam.io.localfilesystem import LocalFileSystem

PREFIX = "fakeremote://"


def remote(path):
    return PREFIX + str(path)


def _local(path):
    assert path.startswith(PREFIX), path
    return path[len(PREFIX) :]


class FakeRemoteFileSystem(FileSystem):
    def __init__(self, pipeline_options=None):
        super().__init__(pipeline_options)
        self._fs = LocalFileSystem(pipeline_options)

    @classmethod
    def scheme(cls):
        return "fakeremote"

    def join(self, basepath, *paths):
        return "/".join([basepath.rstrip("/")] + [p.strip("/") for p in paths])

    def split(self, path):
        head, _, tail = path.rstrip("/").rpartition("/")
        return head, tail

    def mkdirs(self, path):  # object stores have no directories
        pass

    def has_dirs(self):
        return False

    def _list(self, prefix):
        local = _local(prefix)
        root = local if os.path.isdir(local) else os.path.dirname(local)
        for d, _, names in os.walk(root):
            for n in names:
                f = os.path.join(d, n)
                if f.startswith(local):
                    yield FileMetadata(PREFIX + f, os.path.getsize(f), os.path.getmtime(f))

    def create(self, path, mime_type="application/octet-stream", compression_type="auto"):
        os.makedirs(os.path.dirname(_local(path)), exist_ok=True)
        return self._fs.create(_local(path), mime_type, compression_type)

    def open(self, path, mime_type="application/octet-stream", compression_type="auto"):
        return self._fs.open(_local(path), mime_type, compression_type)

    def copy(self, source_file_names, destination_file_names):
        for d in destination_file_names:
            os.makedirs(os.path.dirname(_local(d)), exist_ok=True)
        self._fs.copy([_local(p) for p in source_file_names], [_local(p) for p in destination_file_names])

    def rename(self, source_file_names, destination_file_names):
        for d in destination_file_names:
            os.makedirs(os.path.dirname(_local(d)), exist_ok=True)
        self._fs.rename([_local(p) for p in source_file_names], [_local(p) for p in destination_file_names])

    def exists(self, path):
        return os.path.isfile(_local(path))

    def size(self, path):
        return os.path.getsize(_local(path))

    def last_updated(self, path):
        return os.path.getmtime(_local(path))

    def checksum(self, path):
        return self._fs.checksum(_local(path))

    def metadata(self, path):
        return FileMetadata(path, self.size(path), self.last_updated(path))

    def delete(self, paths):
        for p in paths:
            local = _local(p)
            if os.path.isdir(local):
                shutil.rmtree(local)
            elif os.path.exists(local):
                os.remove(local)

    def report_lineage(self, path, lineage, level=None):
        pass
