"""The category table as the app's modules import it; defined torch-free in ``dvis_models.categories``."""

from dvis_models.categories import Category as Category
from dvis_models.categories import CategoryTable as CategoryTable
from dvis_models.categories import vipseg_categories as vipseg_categories
