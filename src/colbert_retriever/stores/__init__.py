"""Where documents and their token vectors live: the `Store` and `Reader` protocols
(stores/protocol.py), the index folder (stores/folder), a Qdrant collection (stores/qdrant),
and the choice between them by location (stores/location.py). Importing this package loads
none of them."""
