"""Where a retriever keeps its documents: an index folder (`Index`) or a Qdrant collection
(`QdrantStore`), named by one argument, a `Location`::

    ColBERT.create("./my-index", model=...)                                   # files
    ColBERT.create(QdrantConfig(url="http://localhost:6333", collection="docs"), model=...)

The same `Store` methods serve both; only the settings of one kind refuse the other.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from colbert_retriever.config import IndexConfig, IndexType, PlaidConfig, SearchConfig
from colbert_retriever.errors import ConfigError, MissingDependencyError
from colbert_retriever.stores.folder.index import Index
from colbert_retriever.stores.protocol import Store
from colbert_retriever.stores.qdrant.config import QdrantConfig

if TYPE_CHECKING:
    from colbert_retriever.stores.qdrant.store import QdrantStore

Location: TypeAlias = "str | Path | QdrantConfig"
"""An index folder, or the Qdrant collection a `QdrantConfig` names."""


def create_store(
    location: Location,
    *,
    model: dict[str, Any],
    dim: int,
    index_type: IndexType = "auto",
    plaid: PlaidConfig | None = None,
    pool_factor: int = 1,
    lexical: bool = True,
    exist_ok: bool = False,
    config: IndexConfig | None = None,
    search_config: SearchConfig | None = None,
) -> Store:
    """A new, empty store at `location` (see `Index.create` and `QdrantStore.create`)."""
    if not isinstance(location, QdrantConfig):
        return Index.create(
            _folder(location),
            model=model,
            dim=dim,
            index_type=index_type,
            plaid=plaid,
            pool_factor=pool_factor,
            lexical=lexical,
            exist_ok=exist_ok,
            config=config,
            search_config=search_config,
        )
    folder_only = {
        "index_type": index_type != "auto",
        "plaid": plaid is not None,
        "pool_factor": pool_factor != 1,
        "index_config": config is not None,
    }
    refused = [name for name, given in folder_only.items() if given]
    if refused:
        msg = f"{', '.join(refused)} applies to index folders; Qdrant keeps every token vector as float32"
        raise ConfigError(msg)
    return _qdrant().create(
        location, model=model, dim=dim, lexical=lexical, exist_ok=exist_ok, search_config=search_config
    )


def open_store(
    location: Location, *, config: IndexConfig | None = None, search_config: SearchConfig | None = None
) -> Store:
    """The existing store at `location` (see `Index.open` and `QdrantStore.open`)."""
    if isinstance(location, QdrantConfig):
        if config is not None:
            msg = "index_config applies to index folders, not to a Qdrant collection"
            raise ConfigError(msg)
        return _qdrant().open(location, search_config=search_config)
    return Index.open(_folder(location), config=config, search_config=search_config)


def store_exists(location: Location) -> bool:
    """Whether `location` already holds an index or collection."""
    if isinstance(location, QdrantConfig):
        from colbert_retriever.errors import IndexNotFoundError

        try:
            _qdrant().open(location).close()
        except IndexNotFoundError:
            return False
        return True
    from colbert_retriever.stores.folder.manifest import index_exists

    return index_exists(Path(location))


def describe(location: Location) -> str:
    """`location` in messages: the folder, or the collection and where it is (never a key)."""
    return location.where if isinstance(location, QdrantConfig) else f"index {location}"


def _folder(location: object) -> Path:
    if not isinstance(location, (str, Path)):
        msg = f"a location is an index folder (str or Path) or a QdrantConfig, got {type(location).__name__}"
        raise ConfigError(msg)
    return Path(location)


def _qdrant() -> type[QdrantStore]:
    try:
        from colbert_retriever.stores.qdrant.store import QdrantStore
    except ImportError as exc:
        if not (exc.name or "").startswith("qdrant_client"):
            raise
        msg = "a Qdrant store needs qdrant-client: pip install 'colbert-retriever[qdrant]'"
        raise MissingDependencyError(msg) from exc
    return QdrantStore
