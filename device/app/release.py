# Written by the bundle builder for each release (suture.ward.release); this copy is for a
# development deploy.
VERSION = 1
FAULT = ""
