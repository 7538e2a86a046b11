"""Categories: a collection of category vectors per model, written through CategoryService
and read by SearchService.PredictCategories through a selector."""
