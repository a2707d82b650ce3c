"""Rendering Teams cards with Microsoft's ``adaptivecards`` JavaScript renderer in headless Chromium."""
