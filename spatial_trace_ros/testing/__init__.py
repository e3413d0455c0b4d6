"""Test infrastructure shipped with the package: process management and protocol fakes of hardware
(fake UR controller, fake G1, fake model servers). Used by test/ and bench/, never by the product."""
