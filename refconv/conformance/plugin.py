"""pytest plugin: ``pytest --refconv-target=module:function`` runs the conformance suite."""
