"""An HTTP service over one index, with a search page (`pip install 'colbert-retriever[serve]'`).

    from colbert_retriever.service import ServiceConfig, create_app
    app = create_app(ColBERT.open("./my-index"), ServiceConfig(api_key="..."))

or from the shell: `colbert-retriever serve --index ./my-index --port 8000`; the API's
documentation is then at /docs and the search page at /.
"""

from colbert_retriever.service.app import create_app
from colbert_retriever.service.limits import ServiceConfig

__all__ = ["ServiceConfig", "create_app"]
