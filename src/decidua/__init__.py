"""decidua: decision support for NK-cell and alloimmune causes of recurrent pregnancy loss."""

__version__ = "0.1.0"
