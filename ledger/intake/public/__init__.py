"""The public intake: the forms through which a credit subject files an objection or a credit repair
application (app.py: the pages; forms.py: the fields to a family record, pure; csrf.py: the forms'
tokens). It attests what the public file with its own key, like the gateway does for departments."""
