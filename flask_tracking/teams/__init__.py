"""Teams: a site's members and their roles, invitations by email, transferring a site.

What each role may do is tracking/access.py's; this package changes who has which role.
"""
