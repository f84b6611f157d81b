"""Disclosure casework (issue 10): the working-day calendar, 依申请公开 applications and 网民留言
from intake to archive on the legal clock. A feature package: imports bot/ and push/ (audit,
channels, consent), never handlers/ or console/; cases/actions.py is its service layer."""
