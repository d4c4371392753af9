"""The model repository in object storage: ``push`` a local repository's versions to ``s3://``
(or ``gs://``), with the promises a local export keeps — a version appears only when complete,
and none is ever overwritten.

::

    push("models/digits", "s3://my-bucket/models/digits")      # {1: 's3://.../digits/1', ...}
    export_model(model, "s3://my-bucket/models/digits")        # next version, straight there

Object stores have no rename, so a version cannot appear at once the way a local one does
(``export_model`` renames a finished folder into place). What a push of version ``v`` does
instead, and what a reader listing ``<uri>/`` sees at each moment:

1. **Stage.** ``<uri>/.tmp-push-<v>-<random>/owner.json`` (who pushes: host, pid, start time)
   and then ``.../files/<path>`` for every file of the version but ``saved_model.pb``. This is
   the long part (all the bytes). A reader sees a child that is no version: TF Serving's
   file-system source skips children whose names do not parse as numbers
   (``file_system_storage_path_source.cc``), and so does ``push``.
2. **Claim.** ``<uri>/.push-claim-<v>``, the same owner record, created with the store's
   atomic create (S3 ``If-None-Match: *``, GCS ``ifGenerationMatch=0``): of concurrent pushes
   of ``v`` exactly one gets it; the others are refused and remove their staging areas. The
   holder then lists ``<uri>/`` again and refuses if ``v`` appeared meanwhile.
3. **Publish.** The staged files are copied inside the store (no bytes through this machine)
   to ``<uri>/<v>/<path>``. Only now is ``<uri>/<v>/`` visible, *without* ``saved_model.pb``:
   a partial version, for as long as the copies take. A TF Serving polling in that window
   fails to load ``v`` (no SavedModel) and retries ``--max_num_load_retries`` times (5) every
   ``--load_retry_interval_micros`` (1 minute), by then finding it complete. KServe's storage
   initializer copies a ``storageUri`` once, when a pod starts: a pod starting in that window
   holds ``v`` partial until it restarts.
4. **Commit.** ``<uri>/<v>/saved_model.pb`` is uploaded with the atomic create — the moment
   ``v`` is complete. ``push`` and ``export_model`` count a version complete only with it.
5. **Clean up.** The staging area and the claim are deleted.

**Never overwritten.** A version already there — complete, or partial (objects without
``saved_model.pb``), or claimed by a push that may still run — is refused with
:class:`~tfserve_nb.errors.VersionExistsError` naming it, before anything is uploaded and
without touching any of its objects. The one writer of ``<uri>/<v>/`` is the claim's holder,
and ``saved_model.pb`` is only ever created, never replaced. (A writer that ignores claims,
``aws s3 cp`` say, is not stopped by them: only the commit's atomic create guards against it.)

**An interrupted push** (killed, or its machine lost) leaves, depending on the step:

- in step 1 (the likely case): a staging area. The next push into ``<uri>`` removes it once its
  owner is provably gone — same host, boot and pid namespace, process no longer running
  (:class:`~tfserve_nb.storage.repository.PushOwner`); a staging area of another machine is
  left alone, and never stops a push of ``v``;
- in steps 2 and 3: the claim, and in step 3 a partial version. The next push of ``v``
  refuses a partial version (naming who claimed it and whether that process still runs) and
  tells how to delete it; ``export_model`` picks the next number. A claim without any version
  object is removed like a staging area (owner gone, here) or refused as being pushed (naming
  the claim to delete if that push, of another machine, is gone);
- in steps 4 and 5: a complete version, and a claim that the next push removes.

A push that fails (not killed) removes what it created before raising.

**Credentials** are the store's own: botocore's chain for S3 (``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``, ``~/.aws``; ``AWS_ENDPOINT_URL`` for an
S3-compatible server; ``AWS_DEFAULT_REGION``), application default credentials for GCS.
tfserve-nb stores none. ``storage_options`` go to the fsspec file system as they are.

**What is tested.** S3 through s3fs against moto's S3 server (tests/storage): round trips,
refusals, concurrent pushes of one version, pushes killed while staging and while
publishing, the errors. moto honours ``If-None-Match: *`` on ``PutObject`` (the claim, the
commit). ``gs://`` takes the same code through gcsfs, whose atomic create is marked
experimental by gcsfs itself; it is not tested here (no GCS server runs offline).

Needs the ``s3`` extra (``pip install 'tfserve-nb[s3]'``: s3fs, fsspec) or ``gcs`` (gcsfs);
without it :class:`~tfserve_nb.errors.StorageError` says which. Modules: :mod:`.filesystem`
(opening a URI, the errors), :mod:`.repository` (the layout above), :mod:`.push` (the steps).
"""

from __future__ import annotations

from .filesystem import is_remote
from .push import push

__all__ = ["is_remote", "push"]
