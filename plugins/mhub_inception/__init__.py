"""First-party mhub plugin: Inception v3, Inception-v4, Inception-ResNet-v2, Xception and aligned Xception.

The package imports no torch (``mhub list`` loads its plugin module); the models live in
:mod:`mhub_inception.model`::

    from mhub_inception.model import Inceptionv3, Xception
    model = Inceptionv3(pretrained=True, num_classes=10)
    aligned = Xception(65)
"""
