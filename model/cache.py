"""The one cache: where everything derived from a model is kept, how it is written, how it is keyed.

Everything lives under `cache_dir()`:

    weights/   dequantized GGUF weights (safetensors), keyed by the file's sha256 and the loader code
    traces/    one forward pass (safetensors + json), keyed by model fingerprint, prompt and model code
    derived/   the JSON value of a facts function, keyed by its name, its arguments (a model by
               its fingerprint, a trace by its hash) and the code of model/ and facts/
    fingerprints/  sha256 of a checkpoint, memoised per (path, size, mtime)

`code_version(...)` is the sha256 of every source file of the named packages. Every key includes
it, so a value computed by other code is never served: change one line of the transformer and
every trace is computed afresh. It is coarser than "the function and what it calls" (any edit in
facts/ recomputes every fact), and that is the point: a call graph can be missed, a file hash
cannot.

Every file is written under a temporary name and renamed into place (`atomic_path`), and every
JSON entry carries its own sha256: an entry that fails it, or does not parse, is recomputed.
An entry is computed under a lock on its key (`computing`): two processes that miss the same
key at once compute it once, so every reader sees the same value (a float result may differ in
its last bits between processes with different thread counts, and a second writer would
otherwise replace what the first one's readers already hold).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import inspect
import json
import os
import stat
import tempfile
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]  # the project: model/, facts/, scenes/ ...


def cache_dir() -> Path:
    """$MANIM_TRANSFORMER_CACHE, or ~/.cache/manim-transformer: made if missing, and checked to be
    a folder this process can write (else one UserError line saying what to set)."""
    root = os.environ.get("MANIM_TRANSFORMER_CACHE")
    if not root:
        try:  # HOME set but empty would put the cache in the working folder or /
            home = Path.home() if os.environ.get("HOME", "x").strip() else None
        except (RuntimeError, KeyError):  # no HOME and no password entry for this user
            home = None
        if home is None or not home.is_absolute():
            from .errors import UserError

            raise UserError("no cache folder: HOME is not set; set MANIM_TRANSFORMER_CACHE to a writable folder")
        root = home / ".cache" / "manim-transformer"
    return usable(str(root))


@functools.lru_cache(maxsize=64)
def usable(root: str) -> Path:
    """`root` as a Path once it exists as a writable folder; checked once per process and folder."""
    from .errors import UserError

    where = "MANIM_TRANSFORMER_CACHE" if os.environ.get("MANIM_TRANSFORMER_CACHE") else "HOME's cache folder"
    if os.path.exists(root) and not os.path.isdir(root):
        raise UserError(f"the cache folder {root} ({where}) is a file, not a folder; set MANIM_TRANSFORMER_CACHE to a writable folder")
    try:
        os.makedirs(root, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot use the cache folder {root} ({where}): {e.strerror or e}; "
                        "set MANIM_TRANSFORMER_CACHE to a writable folder") from None
    if not os.access(root, os.W_OK | os.X_OK):
        raise UserError(f"the cache folder {root} ({where}) is not writable; set MANIM_TRANSFORMER_CACHE to a writable folder")
    return Path(root)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_text(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode("utf-8")).hexdigest()


@functools.cache
def code_version(*packages: str) -> str:
    """sha256 over the source of every .py file in the named packages (e.g. "model", "facts")."""
    h = hashlib.sha256()
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            h.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: Path):
    """Yield a temporary path beside `path`; on success it is renamed onto `path` in one step.

    On any error (or Ctrl-C) the temporary file is removed and an earlier `path` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The name carries our pid, so a later run can tell a temporary left by a killed process
    # (sweep it) from one another live process is still writing (leave it).
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes 0600; give it a normal file's mode
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


@contextlib.contextmanager
def computing(path: Path):
    """Hold an exclusive lock on `path`'s key while checking, computing and writing its entry.

    The lock is fcntl.flock on a file in cache_dir()/locks named by a hash of `path` (released by
    the kernel if the process dies)."""
    lock = cache_dir() / "locks" / f"{sha256_text(str(Path(path).resolve()))[:40]}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- checksummed JSON entries

def write_json(path: Path, value: Any) -> None:
    """Write {"sha256": ..., "value": ...} atomically; the hash covers the value's canonical JSON."""
    body = json.dumps(value, ensure_ascii=False, sort_keys=True)
    atomic_write_text(path, json.dumps({"sha256": sha256_text(body), "value": value}, ensure_ascii=False))


MAX_ENTRY_BYTES = 256 << 20  # far above any fact's JSON; a bigger "entry" is not one of ours


def read_plain(path: Path, limit: int) -> bytes:
    """The bytes of `path` when it is a regular file of at most `limit` bytes, read without
    following a symlink in its last component and without blocking on a FIFO. Anything else raises
    OSError: a cache entry swapped for a link (to /dev/zero, to a file elsewhere), a folder, a pipe
    or a huge file is never read."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(f"{Path(path).name} is not a regular file")
        if info.st_size > limit:
            raise OSError(f"{Path(path).name} holds {info.st_size} bytes, more than {limit}")
        chunks, size = [], 0
        while block := os.read(fd, min(1 << 20, limit + 1 - size)):  # it may grow while read
            chunks.append(block)
            size += len(block)
            if size > limit:
                raise OSError(f"{Path(path).name} is larger than {limit} bytes")
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_json(path: Path) -> Any:
    """The value of an entry written by `write_json`; raises ValueError if it is damaged or edited."""
    try:
        entry = json.loads(read_plain(Path(path), MAX_ENTRY_BYTES).decode("utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"cache entry {Path(path).name} cannot be read ({e})") from None
    if not isinstance(entry, dict) or set(entry) != {"sha256", "value"}:
        raise ValueError(f"cache entry {Path(path).name} is not a cache entry")
    body = json.dumps(entry["value"], ensure_ascii=False, sort_keys=True)
    if entry["sha256"] != sha256_text(body):
        raise ValueError(f"cache entry {Path(path).name} fails its checksum")
    return entry["value"]


def entry_path(kind: str, key: str, suffix: str = ".json") -> Path:
    """The file for (kind, key), always inside cache_dir(): the name is a hash, never user text."""
    return cache_dir() / kind / f"{sha256_text(kind, key)[:40]}{suffix}"


# --------------------------------------------------------------------------- the decorator for facts

_MEMORY: OrderedDict[str, Any] = OrderedDict()  # this process's recent values, by key
_MEMORY_SIZE = 256


def key_part(name: str, value: Any) -> str:
    """How an argument enters a key: a model by its fingerprint, a trace by its hash, else repr."""
    if name == "model" and isinstance(value, str):
        from .loading import resolve  # model/loading imports this module

        return f"model:{resolve(value).fingerprint}"
    if hasattr(value, "meta") and hasattr(value, "tensors"):  # a Trace (not imported: no cycle)
        return f"trace:{value.hash}"
    return repr(value)


def cached(kind: str, packages: tuple[str, ...] = ("model", "facts")) -> Callable:
    """Cache a function's JSON-able result on disk (and in memory) under its arguments and code.

    Cold and warm calls return the same thing: the value is passed through JSON either way
    (tuples come back as lists, dict keys as strings).
    """
    def wrap(fn: Callable) -> Callable:
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def inner(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            parts = [f"{fn.__module__}.{fn.__qualname__}", code_version(*packages)]
            parts += [f"{n}={key_part(n, v)}" for n, v in bound.arguments.items()]
            key = sha256_text(*parts)
            path = entry_path(f"derived/{kind}", key)
            remembered = str(path)  # the cache folder is part of what is remembered
            if remembered in _MEMORY:
                _MEMORY.move_to_end(remembered)
                return _MEMORY[remembered]
            try:
                value = read_json(path)
            except ValueError:
                with computing(path):
                    try:  # another process may have written it while this one waited
                        value = read_json(path)
                    except ValueError:
                        value = json.loads(json.dumps(fn(*args, **kwargs), ensure_ascii=False))
                        try:
                            write_json(path, value)
                        except IsADirectoryError:  # a folder planted where the entry goes: served uncached
                            pass
            _MEMORY[remembered] = value
            if len(_MEMORY) > _MEMORY_SIZE:
                _MEMORY.popitem(last=False)
            return value

        inner.uncached = fn
        return inner
    return wrap
