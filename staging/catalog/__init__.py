"""A searchable product catalog: ``staging index`` builds it, ``staging search`` queries it.

See :mod:`staging.catalog.index` for the on-disk layout, :mod:`staging.catalog.update` for how
a killed run resumes, :mod:`staging.catalog.csv` for the catalog CSV and its path rule, and
:mod:`staging.catalog.bench` for the vector-search benchmark.
"""

from staging.catalog.index import (
    EXACT_MAX,
    INDEX_TYPES,
    CatalogIndex,
    Hit,
    IndexTools,
    UpdateReport,
)

__all__ = ["EXACT_MAX", "INDEX_TYPES", "CatalogIndex", "Hit", "IndexTools", "UpdateReport"]
