raise RuntimeError("this method crashes on purpose")
